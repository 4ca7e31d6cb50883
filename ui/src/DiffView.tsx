// A render's changed files drawn with diff2html, Asterisk's config files highlighted as INI:
// a changed file side by side, a new or removed one as a single column (its other side would
// be empty). Each file gets a git-style header, so diff2html labels it added or deleted, not
// "renamed"; long lines wrap instead of being cut, so no line number scrolls out of sight.
import { Diff2HtmlUI } from "diff2html/lib-esm/ui/js/diff2html-ui-base.js";
import "diff2html/bundles/css/diff2html.min.css";
import hljs from "highlight.js/lib/core";
import ini from "highlight.js/lib/languages/ini";
import "highlight.js/styles/github.css";
import { useEffect, useRef } from "react";
import type { FileDiff } from "./bindings";
import "./diff.css";

// Asterisk's config files are INI-like: sections, key = value, ';' comments.
hljs.registerLanguage("ini", ini);

/** A file's unified diff with the git header diff2html reads a file's kind from. */
export function gitStyle(f: FileDiff): string {
  const mode =
    f.change === "added"
      ? "new file mode 100644\n"
      : f.change === "removed"
        ? "deleted file mode 100644\n"
        : "";
  return `diff --git a/${f.path} b/${f.path}\n${mode}${f.unified}`;
}

function Drawn({ unified, format }: { unified: string; format: "side-by-side" | "line-by-line" }) {
  const target = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!target.current) return;
    const ui = new Diff2HtmlUI(
      target.current,
      unified,
      {
        outputFormat: format,
        drawFileList: false,
        matching: "lines",
        highlight: true,
        synchronisedScroll: true,
        highlightLanguages: new Map([["conf", "ini"]]),
      },
      hljs,
    );
    ui.draw();
    ui.highlightCode();
  }, [unified, format]);
  return <div ref={target} />;
}

export function DiffView({ files }: { files: FileDiff[] }) {
  const changed = files.filter((f) => f.change === "changed");
  const whole = files.filter((f) => f.change !== "changed");
  return (
    <div data-testid="diff-view" className="pbx-diff">
      {changed.length > 0 && (
        <Drawn unified={changed.map(gitStyle).join("")} format="side-by-side" />
      )}
      {whole.length > 0 && <Drawn unified={whole.map(gitStyle).join("")} format="line-by-line" />}
    </div>
  );
}

/** A unified diff kept as text (an apply's, in the history), drawn side by side. */
export function UnifiedDiffView({ unified }: { unified: string }) {
  return (
    <div data-testid="diff-view" className="pbx-diff">
      <Drawn unified={unified} format="side-by-side" />
    </div>
  );
}
