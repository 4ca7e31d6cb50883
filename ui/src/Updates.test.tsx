import { MantineProvider } from "@mantine/core";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { UpdatesPanel } from "./Updates";

afterEach(() => {
  cleanup();
  clearMocks();
});

const setup = (endpoint: string | null) => ({
  endpoint,
  ca_file: null,
  installed: "0.1.0",
  install_kind: "deb",
});

describe("updates", () => {
  it("are off until a server is set; a check shows the news, and installs only on a click for that version", async () => {
    const calls: { cmd: string; args: unknown }[] = [];
    let endpoint: string | null = null;
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "updates_get") return setup(endpoint);
      if (cmd === "updates_set") {
        endpoint = (args as { endpoint: string }).endpoint;
        return setup(endpoint);
      }
      if (cmd === "update_check")
        return {
          installed: "0.1.0",
          offered: "0.2.0",
          standing: "newer",
          notes: "Ring groups.\nFaster renders.",
          published: "2026-12-04T10:00:00Z",
          for_this_platform: true,
        };
      if (cmd === "update_install") return (args as { version: string }).version;
      throw new Error(`unexpected ${cmd}`);
    });
    render(
      <MantineProvider>
        <UpdatesPanel />
      </MantineProvider>,
    );
    expect((await screen.findByTestId("updates-off")).textContent).toContain("Updates are off");
    expect((screen.getByTestId("update-check") as HTMLButtonElement).disabled).toBe(true);
    await userEvent.type(
      screen.getByTestId("update-endpoint"),
      "https://u.example.net/latest.json",
    );
    await userEvent.click(screen.getByTestId("update-keep"));
    await waitFor(() => expect(screen.queryByTestId("updates-off")).toBeNull());
    await userEvent.click(screen.getByTestId("update-check"));
    const news = await screen.findByTestId("update-news");
    expect(news.textContent).toContain("pbxdesk 0.2.0 is available (published 2026-12-04)");
    expect(screen.getByTestId("update-notes").textContent).toBe("Ring groups.\nFaster renders.");
    // Nothing was fetched by the check.
    expect(calls.some((c) => c.cmd === "update_install")).toBe(false);
    await userEvent.click(screen.getByTestId("update-install"));
    expect((await screen.findByTestId("update-installed")).textContent).toContain(
      "pbxdesk 0.2.0 is installed; it runs after a restart",
    );
    const install = calls.find((c) => c.cmd === "update_install");
    expect(install?.args).toEqual(expect.objectContaining({ version: "0.2.0" }));
  });

  it("a downgrade is told and not offered; a refused download is said", async () => {
    let standing = "older";
    mockIPC((cmd) => {
      if (cmd === "updates_get") return setup("https://u.example.net/latest.json");
      if (cmd === "update_check")
        return {
          installed: "0.2.0",
          offered: standing === "older" ? "0.1.0" : "0.3.0",
          standing,
          notes: null,
          published: null,
          for_this_platform: true,
        };
      if (cmd === "update_install")
        throw {
          code: "refused",
          message: "the download's signature is not the publisher's: … nothing was changed",
          field: null,
          refusal: null,
          fields: [],
        };
      throw new Error(`unexpected ${cmd}`);
    });
    render(
      <MantineProvider>
        <UpdatesPanel />
      </MantineProvider>,
    );
    await waitFor(() =>
      expect((screen.getByTestId("update-check") as HTMLButtonElement).disabled).toBe(false),
    );
    await userEvent.click(screen.getByTestId("update-check"));
    expect((await screen.findByTestId("update-news")).textContent).toContain(
      "older than this 0.2.0: nothing to install",
    );
    expect(screen.queryByTestId("update-install")).toBeNull();
    standing = "newer";
    await userEvent.click(screen.getByTestId("update-check"));
    await userEvent.click(await screen.findByTestId("update-install"));
    expect((await screen.findByTestId("update-error")).textContent).toContain(
      "not the publisher's",
    );
    expect(screen.queryByTestId("update-installed")).toBeNull();
  });
});
