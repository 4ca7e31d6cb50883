import { MantineProvider } from "@mantine/core";
import { Notifications } from "@mantine/notifications";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import type { RingGroup } from "./bindings";
import { RingGroupPanel } from "./RingGroups";

afterEach(() => {
  cleanup();
  clearMocks();
});

const people = [100, 101, 102].map((extension, i) => ({
  id: i + 1,
  extension,
  display_name: ["Ann Example", "Bob Example", "Cleo Example"][i],
  email: `u${extension}@acme.example`,
  role: "member",
  status: "active",
  device_count: 1,
}));

const desk: RingGroup = {
  id: 1,
  tenant: "acme",
  extension: 190,
  name: "Front desk",
  strategy: "in_order",
  members: [
    { extension: 101, name: "Bob Example" },
    { extension: 100, name: "Ann Example" },
  ],
  member_seconds: 15,
  total_seconds: 45,
  no_answer: "voicemail:100",
  version: 1,
};

function shown() {
  render(
    <MantineProvider>
      <Notifications />
      <RingGroupPanel tenant="acme" />
    </MantineProvider>,
  );
}

describe("ring groups", () => {
  it("lists a group with its members in order and where it goes on", async () => {
    mockIPC((cmd) => {
      if (cmd === "ring_group_list") return [desk];
      if (cmd === "user_list") return people;
      throw new Error(`unexpected ${cmd}`);
    });
    shown();
    const row = await screen.findByTestId("ring-group-190");
    expect(row.textContent).toContain("In order");
    expect(row.textContent).toContain("15 s each, 45 s in all");
    expect(row.textContent).toContain("101 Bob Example → 100 Ann Example");
    expect(row.textContent).toContain("voicemail:100 · Ann Example");
  });

  it("creates a group with the members picked, and shows each refusal at its field", async () => {
    const sent: unknown[] = [];
    let fail = true;
    mockIPC((cmd, args) => {
      if (cmd === "ring_group_list") return [];
      if (cmd === "user_list") return people;
      if (cmd === "ring_group_create") {
        sent.push((args as { input: unknown }).input);
        if (fail) {
          fail = false;
          throw {
            code: "validation",
            message: "2 fields",
            field: "name",
            refusal: null,
            fields: [
              { field: "name", message: "a name of 1 to 100 characters" },
              { field: "no_answer", message: "does not lead back to this group" },
            ],
          };
        }
        return { ...desk, strategy: "all", extension: 103, name: "Sales" };
      }
      throw new Error(`unexpected ${cmd}`);
    });
    shown();
    await userEvent.click(await screen.findByTestId("ring-group-new"));
    const dialog = await screen.findByRole("dialog");
    await userEvent.click(within(dialog).getByTestId("ring-group-save"));
    expect(await within(dialog).findByText("a name of 1 to 100 characters")).toBeTruthy();
    expect(within(dialog).getByText("does not lead back to this group")).toBeTruthy();
    await userEvent.type(within(dialog).getByTestId("ring-group-name"), "Sales");
    await userEvent.click(within(dialog).getByTestId("ring-group-save"));
    await waitFor(() => expect(sent.length).toBe(2));
    expect(sent[1]).toEqual(
      expect.objectContaining({ tenant: "acme", name: "Sales", extension: null, strategy: "all" }),
    );
    expect(await screen.findByText("Ring group Sales is extension 103")).toBeTruthy();
  });
});
