import { MantineProvider } from "@mantine/core";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { LocalApiControl } from "./LocalApiControl";

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("local API switch", () => {
  it("is off at first, switched on sends the port and shows where it answers", async () => {
    const sent: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "local_api_get") return { enabled: false, port: 8640, url: null, error: null };
      if (cmd === "local_api_set") {
        const setting = (args as { setting: { enabled: boolean; port: number } }).setting;
        sent.push(setting);
        return {
          ...setting,
          url: setting.enabled ? `http://127.0.0.1:${setting.port}/api/v1` : null,
          error: null,
        };
      }
      throw new Error(`unexpected ${cmd}`);
    });
    render(
      <MantineProvider>
        <LocalApiControl />
      </MantineProvider>,
    );
    const open = await screen.findByTestId("local-api-open");
    expect(open.textContent).toBe("API off");
    await userEvent.click(open);
    await userEvent.click(await screen.findByTestId("local-api-switch"));
    await waitFor(() => expect(sent).toEqual([{ enabled: true, port: 8640 }]));
    expect((await screen.findByTestId("local-api-url")).textContent).toContain(
      "http://127.0.0.1:8640/api/v1",
    );
    expect(screen.getByTestId("local-api-open").textContent).toBe("API on");
  });

  it("shows why the port was refused", async () => {
    mockIPC((cmd) => {
      if (cmd === "local_api_get") return { enabled: false, port: 8640, url: null, error: null };
      if (cmd === "local_api_set")
        throw {
          code: "validation",
          message: "port 80: 1024 to 65535 (ports below 1024 need root)",
          field: "port",
          refusal: null,
        };
      throw new Error(`unexpected ${cmd}`);
    });
    render(
      <MantineProvider>
        <LocalApiControl />
      </MantineProvider>,
    );
    await userEvent.click(await screen.findByTestId("local-api-open"));
    await userEvent.click(await screen.findByTestId("local-api-switch"));
    expect(await screen.findByText(/ports below 1024 need root/)).toBeTruthy();
  });
});
