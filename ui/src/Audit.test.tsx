import { MantineProvider } from "@mantine/core";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { AuditView } from "./AuditView";
import type { AuditEntryView, AuditFilter, AuditPage } from "./bindings";

afterEach(() => {
  cleanup();
  clearMocks();
});

function entry(id: number, action: string): AuditEntryView {
  return {
    id,
    at: 1_790_000_000_000 + id,
    actor: "admin",
    via: "app",
    action,
    entity_type: "user",
    entity_id: `acme/${100 + id}`,
    tenant: "acme",
    changes: [
      { field: "display_name", before: "User 7", after: "User Seven" },
      { field: "voicemail_pin", before: null, after: "changed" },
    ],
  };
}

describe("audit log", () => {
  it("pages newest first, filters by kind, and opens an entry to what changed", async () => {
    const asked: AuditFilter[] = [];
    mockIPC((cmd, args) => {
      if (cmd !== "audit_page") throw new Error(`unexpected ${cmd}`);
      const f = (args as { filter: AuditFilter }).filter;
      asked.push(f);
      const page: AuditPage =
        f.before === null
          ? { entries: [entry(9, "user.update"), entry(8, "users.import")], next_before: 8 }
          : { entries: [entry(7, "user.create")], next_before: null };
      return page;
    });
    render(
      <MantineProvider>
        <AuditView tenant="acme" />
      </MantineProvider>,
    );
    const user = userEvent.setup();
    await screen.findByTestId("audit-row-9");
    expect(asked[0]).toMatchObject({ tenant: "acme", before: null, limit: 50 });
    await user.click(screen.getByTestId("audit-more"));
    await screen.findByTestId("audit-row-7");
    expect(asked.at(-1)?.before).toBe(8);
    expect(screen.queryByTestId("audit-more")).toBeNull();
    await user.click(screen.getByTestId("audit-row-9"));
    const changes = await screen.findByTestId("audit-changes");
    expect(changes.textContent).toContain("display name");
    expect(changes.textContent).toContain("User Seven");
    expect(changes.textContent).toContain("changed");
    await user.type(screen.getByTestId("audit-actor"), "bob");
    await waitFor(() => expect(asked.at(-1)?.actor).toBe("bob"));
    expect(asked.at(-1)?.before).toBeNull();
  });
});
