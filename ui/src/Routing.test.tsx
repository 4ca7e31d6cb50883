import { MantineProvider } from "@mantine/core";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { afterEach, describe, expect, it } from "vitest";
import { HistoryPanel } from "./ApplyWizard";
import type { PbxDiff, Trace } from "./bindings";
import { CallPathPanel, PreviewPanel } from "./Preview";
import { DidPanel, TrunkPanel } from "./RoutingViews";
import { acme } from "./test-fixtures";

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

  it("applies through the wizard, shows each step as it ends, and blocks while the render has errors", async () => {
    const clean: PbxDiff = { ...diff, findings: [] };
    const sent: Record<string, unknown>[] = [];
    const steps = [
      { step: "upload", ok: true, ms: 12, detail: "1 file(s)" },
      { step: "reload", ok: false, ms: 3, detail: "pbx_config: An unknown error occurred" },
      { step: "restore files", ok: true, ms: 9, detail: "" },
    ];
    mockIPC((cmd, args) => {
      if (cmd === "pbx_diff") return clean;
      if (cmd === "pbx_apply") {
        const a = args as Record<string, unknown>;
        sent.push(a);
        // The live progress: each step through the channel before the report.
        const progress = a.progress as { onmessage: (s: unknown) => void };
        for (const s of steps) progress.onmessage(s);
        return {
          pbx: "pbx1",
          outcome: "rolled_back",
          summary: "1 file(s) changed",
          steps,
          diff: clean.diff,
          findings: [],
          failed: "reload",
        };
      }
      throw new Error(`unexpected ${cmd}`);
    });
    inApp(<PreviewPanel pbx="pbx1" />);
    const user = userEvent.setup();
    await user.click(await screen.findByTestId("apply-open"));
    await user.click(await screen.findByLabelText("Add pbxdesk's include lines to the core files"));
    await user.click(screen.getByTestId("apply-run"));
    const report = await screen.findByTestId("apply-report");
    expect(report.textContent).toContain("rolled_back");
    expect(report.textContent).toContain("Failed at “reload”");
    expect(report.textContent).toContain("pbx_config: An unknown error occurred");
    expect(screen.queryByTestId("apply-rollback")).toBeNull();
    // The rolled back apply is marked failed, not ticked off.
    const marks = screen
      .getAllByTestId("step-mark")
      .map((m) => `${m.getAttribute("data-state")}:${m.textContent}`);
    expect(marks).toEqual(["done:✓", "failed:✕", "now:3"]);
    expect(sent[0].name).toBe("pbx1");
    expect(sent[0].source).toBe("workspace");
    expect(sent[0].options).toEqual({
      dry_run: false,
      overwrite_drift: false,
      add_includes: true,
      confirm_seconds: 300,
    });
    cleanup();
    mockIPC((cmd) => {
      if (cmd === "pbx_diff") return diff;
      throw new Error(`unexpected ${cmd}`);
    });
    inApp(<PreviewPanel pbx="pbx1" />);
    await user.click(await screen.findByTestId("apply-open"));
    await waitFor(() =>
      expect((screen.getByTestId("apply-run") as HTMLButtonElement).disabled).toBe(true),
    );
  });

  it("lists the applies of a PBX with their changes and rolls the last one back", async () => {
    const sent: Record<string, unknown>[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "pbx_apply_history")
        return [
          {
            id: 7,
            at: 1790000000000,
            actor: "local:owner",
            outcome: "applied",
            summary: "1 file(s) changed, 7 unchanged",
            failed: null,
            steps: [{ kind: "confirm", step: "confirm", ok: true, ms: 2, detail: "disarmed" }],
            log: null,
            diff: "--- a/voicemail.d/pbxdesk/tenant-acme.conf\n+++ b/voicemail.d/pbxdesk/tenant-acme.conf\n@@ -1 +1 @@\n-100 => ********,Ada\n+100 => ********,Ada King\n",
          },
          {
            id: 6,
            at: 1789995000000,
            actor: "local:owner",
            outcome: "refused",
            summary:
              "the PBX was changed by hand since the last apply (`pjsip.d/pbxdesk/tenant-acme.conf`)",
            failed: "check drift",
            steps: [{ kind: "lock", step: "lock", ok: true, ms: 3, detail: "locked" }],
            diff: "",
            log: null,
          },
          {
            id: 5,
            at: 1789990000000,
            actor: "local:owner",
            outcome: "rolled_back_by_pbx",
            summary:
              "the apply backed up in 1789 was not confirmed; the PBX rolled it back by itself",
            failed: "confirm",
            steps: [],
            diff: "",
            log: "the apply was not confirmed within 300 s: rolling back",
          },
        ];
      if (cmd === "pbx_apply") {
        sent.push(args as Record<string, unknown>);
        return {
          pbx: "pbx1",
          outcome: "applied",
          summary: "back to the apply of 1789990000000 (Unix ms): 1 file(s) changed",
          steps: [
            {
              kind: "verify_dialplan",
              step: "verify dialplan",
              ok: true,
              ms: 5,
              detail: "36 context(s) loaded as rendered",
            },
          ],
          diff: diff.diff,
          findings: [],
          failed: null,
        };
      }
      throw new Error(`unexpected ${cmd}`);
    });
    inApp(<HistoryPanel pbx="pbx1" />);
    const user = userEvent.setup();
    const rows = await screen.findAllByTestId("history-row");
    expect(rows).toHaveLength(3);
    expect(rows[2].textContent).toContain("rolled_back_by_pbx");
    // A refused attempt is listed, its names drawn as code, and says that nothing changed.
    expect(rows[1].textContent).toContain("refused");
    expect(rows[1].textContent).not.toContain("`");
    await user.click(rows[1]);
    const refused = await screen.findByTestId("history-unchanged");
    expect(refused.textContent).toContain("Nothing on the PBX was changed");
    expect(refused.querySelector("code")?.textContent).toBe("pjsip.d/pbxdesk/tenant-acme.conf");
    await user.click(rows[0]);
    await waitFor(() =>
      expect(screen.getByTestId("history-detail").textContent).toContain("tenant-acme.conf"),
    );
    await user.click(rows[2]);
    await waitFor(() =>
      expect(screen.getByTestId("history-detail").textContent).toContain(
        "not confirmed within 300 s",
      ),
    );
    await user.click(screen.getByTestId("history-rollback"));
    await user.click(await screen.findByTestId("apply-run"));
    const verified = await screen.findByTestId("apply-verified");
    expect(verified.textContent).toContain("36 context(s) loaded as rendered");
    expect(sent[0].source).toBe("previous_apply");
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

  it("picks a destination by a person's name, shows the name, and Enter routes the number", async () => {
    const traced: string[] = [];
    const dids: Record<string, unknown>[] = [];
    mockIPC((cmd, args) => {
      const a = args as { input?: { destination: string } };
      if (cmd === "did_list") return dids;
      if (cmd === "pbx_trace") {
        traced.push((args as { number: string }).number);
        return {
          number: "+41445551050",
          tenant: "acme",
          path: [
            { kind: "did", title: "DID +41445551050", detail: "tenant acme" },
            { kind: "user", title: "101 José Álvarez", detail: "" },
          ],
        };
      }
      if (cmd === "user_list") {
        return [
          {
            id: 1,
            extension: 101,
            display_name: "José Álvarez",
            email: "j@acme.example",
            role: "member",
            status: "active",
            device_count: 1,
          },
          {
            id: 2,
            extension: 102,
            display_name: "Ann Example",
            email: "a@acme.example",
            role: "member",
            status: "active",
            device_count: 1,
          },
        ];
      }
      if (cmd === "did_add" && a.input) {
        const d = {
          id: 1,
          version: 1,
          tenant: "acme",
          number: "+41445551050",
          label: "Main",
          destination: a.input.destination,
          trunk: null,
        };
        dids.push(d);
        return d;
      }
      throw new Error(`unexpected ${cmd}`);
    });
    inApp(<DidPanel tenant="acme" pbx="pbx1" />);
    const user = userEvent.setup();
    await user.type(screen.getByTestId("did-number"), "044 555 10 50");
    await user.type(screen.getByTestId("did-destination"), "alvarez");
    await user.click(await screen.findByText("user:101 · José Álvarez"));
    expect((screen.getByTestId("did-destination") as HTMLInputElement).value).toBe("user:101");
    await user.type(screen.getByTestId("did-number"), "{Enter}");
    await waitFor(() =>
      expect(screen.getByTestId("did-table").textContent).toContain("user:101 · José Álvarez"),
    );
    // A click on the number shows where it goes.
    await user.click(screen.getByTestId("did-trace-+41445551050"));
    expect((await screen.findByTestId("hop-user")).textContent).toContain("José Álvarez");
    expect(traced).toEqual(["+41445551050"]);
  });

  it("edits a trunk: its transport, its tenants; the password stays unless typed", async () => {
    const sent: Record<string, unknown>[] = [];
    const trunk = {
      id: 1,
      pbx: "pbx1",
      name: "swisscom",
      host: "sip.swisscom.ch",
      port: 5060,
      transport: "udp",
      register: true,
      username: "acct1",
      password_set: true,
      from_domain: null,
      from_user: null,
      codecs: ["alaw"],
      enabled: true,
      tenants: ["acme"],
      version: 3,
    };
    mockIPC((cmd, args) => {
      if (cmd === "trunk_list") return [trunk];
      if (cmd === "tenant_list") return [{ ...acme }, { ...acme, slug: "globex", name: "Globex" }];
      if (cmd === "trunk_update") {
        sent.push(args as Record<string, unknown>);
        return trunk;
      }
      throw new Error(`unexpected ${cmd}`);
    });
    inApp(<TrunkPanel pbx="pbx1" />);
    const user = userEvent.setup();
    await user.click(await screen.findByTestId("trunk-edit-swisscom"));
    expect(screen.getByText("Edit trunk swisscom")).toBeTruthy();
    await user.click(screen.getByTestId("trunk-transport"));
    await user.click(await screen.findByText("tcp"));
    await user.click(screen.getByTestId("trunk-save"));
    await waitFor(() => expect(sent.length).toBe(1));
    const patch = sent[0].patch as Record<string, unknown>;
    expect(sent[0].name).toBe("swisscom");
    expect(patch.transport).toBe("tcp");
    expect(patch.password).toBeNull();
    expect(patch.expected_version).toBe(3);
    expect(patch.tenants).toEqual(["acme"]);
  });
});
