import { MantineProvider } from "@mantine/core";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import type { FleetReport } from "./bindings";
import { FleetView } from "./FleetView";

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("fleet", () => {
  it("lists the pending PBXs, applies them, and shows one line per PBX", async () => {
    let pending = ["branch-b", "demo-pbx"];
    const sent: Record<string, unknown>[] = [];
    const report: FleetReport = {
      lines: [
        {
          pbx: "branch-b",
          outcome: "rolled_back",
          detail: "failed at reload: pbx_config: Error",
          code: "conflict",
          failed: "reload",
        },
        {
          pbx: "demo-pbx",
          outcome: "applied",
          detail: "2 file(s) changed",
          code: null,
          failed: null,
        },
      ],
      worst: "conflict",
    };
    mockIPC((cmd, args) => {
      if (cmd === "pbx_pending") return pending;
      if (cmd === "pbx_apply_pending") {
        sent.push(args as Record<string, unknown>);
        pending = ["branch-b"];
        return report;
      }
      throw new Error(`unexpected ${cmd}`);
    });
    let applied = 0;
    render(
      <MantineProvider>
        <FleetView onApplied={() => applied++} />
      </MantineProvider>,
    );
    expect((await screen.findByTestId("fleet-pending")).textContent).toContain(
      "branch-b, demo-pbx",
    );
    await userEvent.setup().click(screen.getByTestId("fleet-run"));
    const b = await screen.findByTestId("fleet-line-branch-b");
    expect(b.textContent).toContain("rolled_back");
    expect(b.textContent).toContain("failed at reload");
    expect(screen.getByTestId("fleet-line-demo-pbx").textContent).toContain("applied");
    expect(sent[0].parallel).toBe(4);
    expect(applied).toBe(1);
    await waitFor(() =>
      expect(screen.getByTestId("fleet-pending").textContent).toBe("Pending: branch-b"),
    );
  });
});
