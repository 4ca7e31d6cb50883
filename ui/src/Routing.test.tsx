import { MantineProvider } from "@mantine/core";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { afterEach, describe, expect, it } from "vitest";
import type { PbxDiff, Trace } from "./bindings";
import { CallPathPanel, PreviewPanel } from "./Preview";
import { DidPanel } from "./RoutingViews";

afterEach(() => {
  cleanup();
  clearMocks();
});

function inApp(node: ReactNode) {
  return render(<MantineProvider>{node}</MantineProvider>);
}

const diff: PbxDiff = {
  pbx: "pbx1",
  last_applied_at: null,
  last_applied_by: null,
  diff: {
    files: [
      {
        path: "extensions.d/pbxdesk/tenant-acme.conf",
        change: "added",
        old: "",
        new: "[acme_users]\n",
        unified:
          "--- /dev/null\n+++ b/extensions.d/pbxdesk/tenant-acme.conf\n@@ -0,0 +1 @@\n+[acme_users]\n",
      },
    ],
    rows_added: ["acme-100"],
    rows_changed: [],
    rows_removed: [],
    secrets_changed: ["SIP password of acme-101"],
    unchanged_files: 3,
  },
  findings: [
    {
      severity: "error",
      code: "emergency.no_route",
      entity: "tenant acme, emergency numbers",
      message: "no enabled trunk may be used by this tenant",
      fix: "allow the tenant on an enabled trunk",
    },
  ],
};

describe("preview and call path", () => {
  it("shows the summary, the findings with their fix and the diff", async () => {
    mockIPC((cmd) => {
      if (cmd === "pbx_diff") return diff;
      throw new Error(`unexpected ${cmd}`);
    });
    inApp(<PreviewPanel pbx="pbx1" />);
    expect(await screen.findByText("1 file(s) change")).toBeTruthy();
    expect(screen.getByText("1 secret(s) changed (not shown)")).toBeTruthy();
    expect(screen.getByText(/1 error\(s\) \(they block an apply\)/)).toBeTruthy();
    expect(screen.getByText("Fix: allow the tenant on an enabled trunk")).toBeTruthy();
    await waitFor(() =>
      expect(screen.getByTestId("diff-view").textContent).toContain("tenant-acme.conf"),
    );
  });

  it("applies from the preview, shows each step, and blocks while the render has errors", async () => {
    const clean: PbxDiff = { ...diff, findings: [] };
    const sent: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "pbx_diff") return clean;
      if (cmd === "pbx_apply") {
        sent.push(args);
        return {
          pbx: "pbx1",
          outcome: "rolled_back",
          summary: "1 file(s) changed",
          steps: [
            { step: "upload", ok: true, ms: 12, detail: "1 file(s)" },
            { step: "reload", ok: false, ms: 3, detail: "pbx_config: An unknown error occurred" },
            { step: "restore files", ok: true, ms: 9, detail: "" },
          ],
          diff: clean.diff,
          findings: [],
          failed: "reload",
        };
      }
      throw new Error(`unexpected ${cmd}`);
    });
    inApp(<PreviewPanel pbx="pbx1" />);
    const user = userEvent.setup();
    const run = await screen.findByTestId("apply-run");
    await user.click(screen.getByLabelText("Add pbxdesk's include lines to the core files"));
    await user.click(run);
    const report = await screen.findByTestId("apply-report");
    expect(report.textContent).toContain("rolled_back");
    expect(report.textContent).toContain("Failed at “reload”");
    expect(report.textContent).toContain("pbx_config: An unknown error occurred");
    expect(sent[0]).toEqual({
      name: "pbx1",
      options: { dry_run: false, overwrite_drift: false, add_includes: true },
    });
    cleanup();
    mockIPC((cmd) => {
      if (cmd === "pbx_diff") return diff;
      throw new Error(`unexpected ${cmd}`);
    });
    inApp(<PreviewPanel pbx="pbx1" />);
    await waitFor(() =>
      expect((screen.getByTestId("apply-run") as HTMLButtonElement).disabled).toBe(true),
    );
  });

  it("draws each hop of a traced call, and puts a bad number's error next to the field", async () => {
    const trace: Trace = {
      number: "+41445551000",
      tenant: "acme",
      path: [
        { kind: "did", title: "DID +41445551000", detail: "tenant acme" },
        { kind: "user", title: "100 Ada Lovelace", detail: "" },
        { kind: "voicemail", title: "Voicemail 100", detail: "box 100@acme_vm" },
      ],
    };
    const seen: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd !== "pbx_trace") throw new Error(`unexpected ${cmd}`);
      seen.push(args);
      const a = args as { number: string };
      if (a.number === "12;3") {
        throw { code: "validation", message: 'number "12;3": what a phone dials', field: "number" };
      }
      return trace;
    });
    inApp(<CallPathPanel pbx="pbx1" />);
    const user = userEvent.setup();
    await user.type(screen.getByTestId("trace-number"), "+41445551000");
    await user.click(screen.getByTestId("trace-run"));
    expect((await screen.findByTestId("hop-user")).textContent).toContain("Ada Lovelace");
    expect(screen.getByTestId("hop-voicemail").textContent).toContain("box 100@acme_vm");
    expect(seen[0]).toEqual({ name: "pbx1", number: "+41445551000", from: null });

    await user.clear(screen.getByTestId("trace-number"));
    await user.type(screen.getByTestId("trace-number"), "12;3");
    await user.click(screen.getByTestId("trace-run"));
    await waitFor(() =>
      expect(screen.getByTestId("trace-number").getAttribute("aria-invalid")).toBe("true"),
    );
    expect(screen.queryByTestId("call-path")).toBeNull();
  });

  it("routes a number and lists it; a refused destination shows at its field", async () => {
    const dids: { number: string; label: string; destination: string; tenant: string }[] = [];
    mockIPC((cmd, args) => {
      const a = args as { input?: { number: string; destination: string } };
      if (cmd === "did_list") return dids;
      if (cmd === "did_add" && a.input) {
        if (!a.input.destination.startsWith("user:")) {
          throw { code: "validation", message: "destination: user:EXT, …", field: "destination" };
        }
        const d = {
          id: 1,
          version: 1,
          tenant: "acme",
          number: "+41445551050",
          label: "+41445551050",
          destination: a.input.destination,
        };
        dids.push(d);
        return d;
      }
      throw new Error(`unexpected ${cmd}`);
    });
    inApp(<DidPanel tenant="acme" />);
    const user = userEvent.setup();
    await user.type(screen.getByTestId("did-number"), "044 555 10 50");
    await user.type(screen.getByTestId("did-destination"), "somewhere");
    await user.click(screen.getByTestId("did-add"));
    await waitFor(() =>
      expect(screen.getByTestId("did-destination").getAttribute("aria-invalid")).toBe("true"),
    );
    await user.clear(screen.getByTestId("did-destination"));
    await user.type(screen.getByTestId("did-destination"), "user:101");
    await user.click(screen.getByTestId("did-add"));
    await waitFor(() =>
      expect(screen.getByTestId("did-table").textContent).toContain("+41445551050"),
    );
  });
});
