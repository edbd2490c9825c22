/* Cell renderers the report grids name in their column definitions (dashboard/ui/grids.py). */
var dagcomponentfuncs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});

/* A claim id opens the claim's page, for the practice of its row; a CLP01 that names no known claim
   (matched false, or the issue "no such claim") stays text, since its page would read "unknown claim". */
dagcomponentfuncs.ClaimLink = function (props) {
    if (props.value === null || props.value === undefined || props.value === "") {
        return "";
    }
    if (props.data && (props.data.matched === false || props.data.issue === "no such claim")) {
        return String(props.value);
    }
    var href = "/practice/claims/" + encodeURIComponent(props.value);
    if (props.data && props.data.practice_id) {
        href += "?practice=" + encodeURIComponent(props.data.practice_id);
    }
    return React.createElement("a", {href: href}, String(props.value));
};
