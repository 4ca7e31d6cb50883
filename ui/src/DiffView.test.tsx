import { cleanup, render } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { FileDiff } from "./bindings";
import { DiffView, gitStyle } from "./DiffView";

afterEach(cleanup);

const added: FileDiff = {
  path: "extensions.d/pbxdesk/tenant-acme.conf",
  change: "added",
  old: "",
  new: "[acme]\n",
  unified: "--- /dev/null\n+++ b/extensions.d/pbxdesk/tenant-acme.conf\n@@ -0,0 +1 @@\n+[acme]\n",
};
const changed: FileDiff = {
  path: "pjsip.d/pbxdesk/trunk-swisscom.conf",
  change: "changed",
  old: "a\n",
  new: "b\n",
  unified:
    "--- a/pjsip.d/pbxdesk/trunk-swisscom.conf\n+++ b/pjsip.d/pbxdesk/trunk-swisscom.conf\n@@ -1 +1 @@\n-a\n+b\n",
};

describe("the diff view", () => {
  it("labels a new file added (not renamed) and draws it as one column", () => {
    expect(gitStyle(added).split("\n").slice(0, 2)).toEqual([
      `diff --git a/${added.path} b/${added.path}`,
      "new file mode 100644",
    ]);
    const { container } = render(<DiffView files={[added, changed]} />);
    const tags = [...container.querySelectorAll(".d2h-tag")].map((t) =>
      (t.textContent ?? "").trim().toUpperCase(),
    );
    expect(tags).toContain("ADDED");
    expect(tags).toContain("CHANGED");
    expect(tags).not.toContain("RENAMED");
    // Only the changed file is side by side (two columns).
    expect(container.querySelectorAll(".d2h-file-side-diff").length).toBe(2);
  });
});
