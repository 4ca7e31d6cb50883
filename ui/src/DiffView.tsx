// A unified diff drawn side by side, with Asterisk's config files highlighted as INI.
import { Diff2HtmlUI } from "diff2html/lib-esm/ui/js/diff2html-ui-base.js";
import "diff2html/bundles/css/diff2html.min.css";
import hljs from "highlight.js/lib/core";
import ini from "highlight.js/lib/languages/ini";
import "highlight.js/styles/github.css";
import { useEffect, useRef } from "react";

// Asterisk's config files are INI-like: sections, key = value, ';' comments.
hljs.registerLanguage("ini", ini);

export function DiffView({ unified }: { unified: string }) {
  const target = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!target.current) return;
    const ui = new Diff2HtmlUI(
      target.current,
      unified,
      {
        outputFormat: "side-by-side",
        drawFileList: true,
        matching: "lines",
        highlight: true,
        synchronisedScroll: true,
        highlightLanguages: new Map([["conf", "ini"]]),
      },
      hljs,
    );
    ui.draw();
    ui.highlightCode();
  }, [unified]);
  return <div ref={target} data-testid="diff-view" />;
}
