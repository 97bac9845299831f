"""The console's stylesheet and script, served from its own origin (the page's CSP allows no inline
script or style)."""

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
header { background: #1f2d3d; color: #fff; padding: .6em 1.2em; display: flex; gap: 1.4em; align-items: center; }
header a { color: #cfe3ff; text-decoration: none; } header a.on { color: #fff; font-weight: 600; }
header .where { margin-left: auto; opacity: .8; }
main { padding: 1em 1.2em; }
table { border-collapse: collapse; margin: .5em 0 1.2em; }
th, td { border-bottom: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f6f8; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.reason { max-width: 40em; white-space: pre-wrap; word-break: break-word; }
pre { white-space: pre-wrap; word-break: break-word; background: #f4f6f8; padding: .6em; }
pre { max-height: 40em; overflow: auto; }
.msg { padding: .5em .8em; background: #e8f4ea; border: 1px solid #9c9; margin-bottom: 1em; }
.err { padding: .5em .8em; background: #fbeaea; border: 1px solid #d99; margin-bottom: 1em; }
.synced { fill: #3a9d4f; } .failed { fill: #d0453a; } .retrying { fill: #e0a030; }
.key span { display: inline-block; width: .8em; height: .8em; margin: 0 .3em 0 1em; }
.key .synced { background: #3a9d4f; } .key .failed { background: #d0453a; } .key .retrying { background: #e0a030; }
.open { color: #b02a20; font-weight: 600; }
form.inline { display: inline; }
.actions { margin: .6em 0; display: flex; gap: .6em; align-items: center; flex-wrap: wrap; }
.actions input[type=text] { width: 24em; } .actions input[type=number] { width: 5em; }
"""

JS = """
document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("select-all");
  if (all) all.addEventListener("change", () => {
    document.querySelectorAll("input[name=key]").forEach((box) => { box.checked = all.checked; });
  });
  document.querySelectorAll("form[method=post]").forEach((form) => {
    form.addEventListener("submit", () => {
      setTimeout(() => form.querySelectorAll("button").forEach((b) => { b.disabled = true; }), 0);
    });
  });
});
"""
