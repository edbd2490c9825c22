"""Dash building blocks: the page and callback registry (access declared per page) and components."""
