import { MantineProvider } from "@mantine/core";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { ImportModal } from "./BulkImport";
import type { ImportReport } from "./bindings";

afterEach(() => {
  cleanup();
  clearMocks();
});

const bad: ImportReport = {
  tenant: "acme",
  dry_run: true,
  written: false,
  created: 1,
  updated: 0,
  unchanged: 0,
  rows: [
    { line: 2, key: "ann@acme.example", action: "create", extension: 1000, changes: [] },
    { line: 3, key: "bob@acme.example", action: "error", extension: null, changes: [] },
  ],
  errors: [{ line: 3, column: "ring_seconds", value: "999", rule: "5 to 300 seconds" }],
};

const good: ImportReport = {
  ...bad,
  created: 2,
  rows: [bad.rows[0], { ...bad.rows[1], action: "create", extension: 1001 }],
  errors: [],
};

function modal(onImported: (r: ImportReport) => void) {
  return render(
    <MantineProvider>
      <ImportModal tenant="acme" kind="users" opened onClose={() => {}} onImported={onImported} />
    </MantineProvider>,
  );
}

function fileInput(): HTMLInputElement {
  const input = document.querySelector<HTMLInputElement>('input[type="file"]');
  if (!input) throw new Error("no file input");
  return input;
}

describe("bulk import", () => {
  it("previews a file, lists every problem, and imports only a clean one", async () => {
    const sent: Record<string, unknown>[] = [];
    let report = bad;
    mockIPC((cmd, args) => {
      if (cmd !== "users_import") throw new Error(`unexpected ${cmd}`);
      const a = args as Record<string, unknown>;
      sent.push(a);
      if (a.dryRun) return report;
      return { ...good, dry_run: false, written: true };
    });
    const imported: ImportReport[] = [];
    modal((r) => imported.push(r));
    const user = userEvent.setup();
    await user.upload(
      fileInput(),
      new File(
        ["email,name,ring_seconds\nann@acme.example,Ann,\nbob@acme.example,Bob,999\n"],
        "u.csv",
        {
          type: "text/csv",
        },
      ),
    );
    const errors = await screen.findByTestId("import-errors");
    expect(errors.textContent).toContain("ring_seconds");
    expect(errors.textContent).toContain("999");
    expect(errors.textContent).toContain("5 to 300 seconds");
    expect(sent[0].dryRun).toBe(true);
    expect(String(sent[0].csv)).toContain("bob@acme.example,Bob,999");
    expect((screen.getByTestId("import-run") as HTMLButtonElement).disabled).toBe(true);

    report = good;
    await user.upload(
      fileInput(),
      new File(["email,name\nann@acme.example,Ann\nbob@acme.example,Bob\n"], "u2.csv"),
    );
    await waitFor(() =>
      expect((screen.getByTestId("import-run") as HTMLButtonElement).disabled).toBe(false),
    );
    expect(screen.getByTestId("import-preview").textContent).toContain("1001");
    expect(screen.getByTestId("import-run").textContent).toBe("Import 2 users");
    await user.click(screen.getByTestId("import-run"));
    await waitFor(() => expect(imported.length).toBe(1));
    expect(sent.at(-1)?.dryRun).toBe(false);
    expect(sent.at(-1)?.key).toBe("email");
  });
});
