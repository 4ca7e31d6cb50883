import { MantineProvider } from "@mantine/core";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { App } from "./App";
import type { NewUser, User, UserSummary } from "./bindings";
import { acme } from "./test-fixtures";
import { UserTable } from "./UserTable";

function summary(i: number): UserSummary {
  return {
    id: i + 1,
    extension: 1000 + i,
    display_name: `User ${i}`,
    email: `u${i}@acme.example`,
    role: "member",
    status: "active",
    device_count: 1,
  };
}

/** A fake backend holding users in memory, answering the generated commands. */
function fakeBackend() {
  const users: User[] = [];
  const calls: string[] = [];
  const patches: Record<string, unknown>[] = [];
  mockIPC((cmd, args) => {
    calls.push(cmd);
    const a = args as Record<string, unknown>;
    switch (cmd) {
      case "app_info":
        return {
          workspace: "/tmp/demo.sqlite",
          operator: "local:test",
          team: false,
          version: "0.1.0",
        };
      case "workspace_choice_get":
        return { chosen: null, overridden_by_environment: false };
      case "workspace_choose": {
        calls.push(`workspace_choose:${a.path}`);
        const path = String(a.path);
        if (!path.startsWith("/")) {
          throw {
            code: "validation",
            message: `workspace: "${path}" is not allowed: an absolute path to a .sqlite or .db file`,
            field: "workspace",
            fields: [
              {
                field: "workspace",
                message: `"${path}" is not allowed: an absolute path to a .sqlite or .db file`,
              },
            ],
          };
        }
        return { chosen: path, overridden_by_environment: false };
      }
      case "app_restart":
        calls.push("app_restart");
        return null;
      case "tenant_list":
        return [acme];
      case "pbx_list":
        return [];
      case "user_list":
        return users.map((u) => ({ ...summary(u.id - 1), ...u, device_count: u.devices.length }));
      case "user_create": {
        const input = a.input as NewUser;
        if (!input.email.includes("@")) {
          throw {
            code: "validation",
            message: `email: "${input.email}" is not allowed: an e-mail address like name@example.com`,
            field: "email",
          };
        }
        const ext = 1000 + users.length;
        const user: User = {
          id: users.length + 1,
          tenant: "acme",
          extension: ext,
          display_name: input.name,
          email: input.email,
          role: "member",
          status: "active",
          outbound_caller_id: null,
          voicemail_enabled: true,
          voicemail_pin_set: true,
          dnd: false,
          forward_always: null,
          forward_busy: null,
          forward_no_answer: null,
          features_pending: false,
          voicemail_pin_pending: false,
          ring_seconds: 25,
          policy: null,
          version: 1,
          devices: [
            {
              id: 1,
              user_id: users.length + 1,
              label: "Phone",
              sip_username: `acme-${ext}`,
              transport: "udp",
              codecs: ["opus", "ulaw"],
              nat: true,
            },
          ],
        };
        users.push(user);
        return user;
      }
      case "user_show":
        // A copy, as a real backend would send.
        return structuredClone(users.find((u) => u.id === a.id));
      case "user_update": {
        const patch = a.patch as {
          expected_version: number | null;
          name: string | null;
          voicemail_pin: string | null;
        };
        patches.push(a.patch as Record<string, unknown>);
        // As the core does: every wrong field at once, each worded for its own field.
        const wrong = [];
        if (patch.name === "") wrong.push({ field: "name", message: "must not be empty" });
        if (String(a.patch && (a.patch as Record<string, unknown>).forward_always).includes("$")) {
          wrong.push({
            field: "forward_always",
            message: `"${SHELL_ID}" is not allowed: an extension or +E.164 number`,
          });
        }
        if (wrong.length > 0) {
          throw {
            code: "validation",
            message: wrong.map((w) => `${w.field}: ${w.message}`).join("; "),
            field: wrong[0].field,
            fields: wrong,
          };
        }
        const u = users.find((x) => x.id === a.id);
        if (!u) throw { code: "not_found", message: "user was not found", field: null };
        if (patch.expected_version !== u.version) {
          throw {
            code: "conflict",
            message: "user was changed by someone else since you opened it; reload and try again",
            field: null,
          };
        }
        u.display_name = patch.name ?? u.display_name;
        // As when the PBX cannot be reached: the PIN is kept and pending.
        if (patch.voicemail_pin !== null) u.voicemail_pin_pending = true;
        u.version += 1;
        return u;
      }
      case "device_list_of_tenant":
        return users.flatMap((u) => u.devices);
      case "device_reveal":
      case "device_new_password": {
        const device = users.flatMap((u) => u.devices).find((d) => d.id === a.id);
        calls.push(`${cmd}:${a.id}`);
        return {
          device,
          sip_password: cmd === "device_reveal" ? "old-Secret-1234567" : "new-Secret-7654321",
        };
      }
      // The live view opens; no PBX state arrives in these tests.
      case "tenant_watch":
        return 1;
      case "live_unwatch":
        return null;
      default:
        throw { code: "internal", message: `unexpected command ${cmd}`, field: null };
    }
  });
  return { users, calls, patches };
}

/** Dialplan syntax a person might type: kept as data, never a template. */
const SHELL_ID = ["$", "{SHELL(id)}"].join("");

function renderApp() {
  return render(
    <MantineProvider>
      <App />
    </MantineProvider>,
  );
}

/** The app with Ann created in the first tenant and her edit dialog open. */
async function editNewUser() {
  renderApp();
  const user = userEvent.setup();
  await screen.findByText("Acme Dental", { selector: "h2" });
  await user.type(screen.getByTestId("new-user-name"), "Ann");
  await user.type(screen.getByTestId("new-user-email"), "ann@acme.example");
  await user.click(screen.getByTestId("new-user-submit"));
  await screen.findByTestId("created-extension");
  await user.click(await screen.findByRole("button", { name: "Edit" }));
  return user;
}

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("about", () => {
  it("says which version, workspace and engine run, and switches to dark", async () => {
    fakeBackend();
    renderApp();
    const user = userEvent.setup();
    await user.click(await screen.findByTestId("about-open"));
    const about = await screen.findByTestId("about");
    expect(about.textContent).toContain("pbxdesk 0.1.0");
    expect(about.textContent).toContain("/tmp/demo.sqlite");
    expect(about.textContent).toContain("SQLite (this laptop)");
    await user.click(screen.getByText("Dark"));
    await waitFor(() =>
      expect(document.documentElement.getAttribute("data-mantine-color-scheme")).toBe("dark"),
    );
  });

  it("keeps the workspace of the next start, refuses a bad path at its field, and restarts", async () => {
    const backend = fakeBackend();
    renderApp();
    const user = userEvent.setup();
    await user.click(await screen.findByTestId("about-open"));
    const input = await screen.findByTestId("next-workspace");
    await user.type(input, "clinic.sqlite");
    await user.click(screen.getByTestId("next-workspace-keep"));
    await waitFor(() => expect(input.getAttribute("aria-invalid")).toBe("true"));
    expect(screen.queryByTestId("next-workspace-restart")).toBeNull();
    await user.clear(input);
    await user.type(input, "/home/tech/clinic.sqlite");
    await user.click(screen.getByTestId("next-workspace-keep"));
    expect((await screen.findByTestId("next-workspace-kept")).textContent).toContain(
      "/home/tech/clinic.sqlite",
    );
    await user.click(screen.getByTestId("next-workspace-restart"));
    await waitFor(() => expect(backend.calls).toContain("app_restart"));
    expect(backend.calls).toContain("workspace_choose:/home/tech/clinic.sqlite");
  });
});

describe("creating a user", () => {
  it("shows the extension and device the user got", async () => {
    const backend = fakeBackend();
    renderApp();
    const user = userEvent.setup();
    await screen.findByText("Acme Dental", { selector: "h2" });
    await user.type(screen.getByTestId("new-user-name"), "Ann Example");
    await user.type(screen.getByTestId("new-user-email"), "ann@acme.example");
    await user.click(screen.getByTestId("new-user-submit"));
    expect(await screen.findByTestId("created-extension")).toHaveProperty("textContent", "1000");
    expect(screen.getByTestId("created-device").textContent).toBe("acme-1000");
    await waitFor(() => expect(screen.getAllByTestId("user-row")).toHaveLength(1));
    expect(backend.calls).toContain("user_create");
  });

  it("shows a validation error next to the field it concerns", async () => {
    const backend = fakeBackend();
    renderApp();
    const user = userEvent.setup();
    await screen.findByText("Acme Dental", { selector: "h2" });
    await user.type(screen.getByTestId("new-user-name"), "Bob");
    await user.type(screen.getByTestId("new-user-email"), "not-an-email");
    await user.click(screen.getByTestId("new-user-submit"));
    const email = screen.getByTestId("new-user-email");
    await waitFor(() => expect(email.getAttribute("aria-invalid")).toBe("true"));
    const described = email.getAttribute("aria-describedby") ?? "";
    const errorText = described
      .split(" ")
      .map((id) => document.getElementById(id)?.textContent ?? "")
      .join(" ");
    expect(errorText).toContain("not-an-email");
    expect(screen.getByTestId("new-user-name").getAttribute("aria-invalid")).not.toBe("true");
    expect(backend.users).toHaveLength(0);
  });
});

describe("a team workspace", () => {
  it("asks for a login first, and shows the tenants after it", async () => {
    let loggedIn = false;
    mockIPC((cmd, args) => {
      const a = args as Record<string, unknown>;
      const info = { workspace: "team workspace (PostgreSQL)", team: true, version: "0.1.0" };
      switch (cmd) {
        case "app_info":
          return { ...info, operator: loggedIn ? "boss" : null };
        case "login":
          if (a.password !== "right password") {
            throw {
              code: "unauthenticated",
              message: "unknown operator or wrong password",
              field: null,
            };
          }
          loggedIn = true;
          return { ...info, operator: a.username };
        case "tenant_list":
          if (!loggedIn) throw { code: "unauthenticated", message: "log in first", field: null };
          return [acme];
        case "pbx_list":
          return [];
        case "user_list":
        case "device_list_of_tenant":
          return [];
        case "tenant_watch":
          return 1;
        case "live_unwatch":
          return null;
        default:
          throw { code: "internal", message: `unexpected command ${cmd}`, field: null };
      }
    });
    renderApp();
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText(/Operator/), "boss");
    await user.type(screen.getByLabelText(/Password/), "wrong password");
    await user.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByText("unknown operator or wrong password")).toBeTruthy();
    await user.type(screen.getByLabelText(/Password/), "right password");
    await user.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByText("Acme Dental", { selector: "h2" })).toBeTruthy();
    expect(screen.getByText(/boss/)).toBeTruthy();
  });
});

describe("editing a user", () => {
  it("sends the version it was based on, and shows a conflict when someone else saved first", async () => {
    const backend = fakeBackend();
    const user = await editNewUser();
    const nameInput = await screen.findByDisplayValue("Ann");
    // Someone else saves in the meantime.
    backend.users[0].version += 1;
    await user.clear(nameInput);
    await user.type(nameInput, "Ann B");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText(/changed by someone else/)).toBeTruthy();
    expect(backend.users[0].display_name).toBe("Ann");
  });
});

describe("a user's wrong fields", () => {
  it("are all shown at once, each at its own field and without its internal name", async () => {
    const backend = fakeBackend();
    const user = await editNewUser();
    const nameInput = await screen.findByDisplayValue("Ann");
    await user.clear(nameInput);
    const forward = screen.getByLabelText("Forward always", { exact: false });
    await user.click(forward);
    await user.paste(SHELL_ID);
    await user.click(screen.getByRole("button", { name: "Save" }));
    await waitFor(() => expect(nameInput.getAttribute("aria-invalid")).toBe("true"));
    expect(forward.getAttribute("aria-invalid")).toBe("true");
    const said = (input: HTMLElement) =>
      (input.getAttribute("aria-describedby") ?? "")
        .split(" ")
        .map((id) => document.getElementById(id)?.textContent ?? "")
        .join(" ");
    expect(said(nameInput)).toContain("must not be empty");
    expect(said(forward)).toContain("an extension or +E.164 number");
    expect(said(forward)).not.toContain("forward_always");
    expect(backend.users[0].display_name).toBe("Ann");
  });
});

describe("a user's voicemail PIN", () => {
  it("is sent only when typed, and shown pending while the PBX does not have it", async () => {
    const backend = fakeBackend();
    const user = await editNewUser();
    await screen.findByDisplayValue("Ann");
    expect(screen.queryByTestId("pin-pending")).toBeNull();
    await user.click(screen.getByRole("button", { name: "Save" }));
    await waitFor(() => expect(backend.patches).toHaveLength(1));
    expect(backend.patches[0].voicemail_pin).toBeNull();

    await user.click(await screen.findByRole("button", { name: "Edit" }));
    await user.type(await screen.findByTestId("voicemail-pin"), "4321");
    await user.click(screen.getByRole("button", { name: "Save" }));
    await waitFor(() => expect(backend.patches).toHaveLength(2));
    expect(backend.patches[1].voicemail_pin).toBe("4321");

    await user.click(await screen.findByRole("button", { name: "Edit" }));
    expect(await screen.findByTestId("pin-pending")).toBeTruthy();
    expect((screen.getByTestId("voicemail-pin") as HTMLInputElement).value).toBe("");
  });
});

describe("a PBX", () => {
  it("pins the host key only after the technician saw it, and shows check lines with fixes", async () => {
    const pbx = {
      id: 1,
      name: "pbx1",
      host: "10.0.0.5",
      ssh_port: 22,
      ssh_user: "root",
      ssh_auth: "agent",
      ssh_key_path: null,
      ssh_secret_set: false,
      host_key: null as string | null,
      config_dir: "/etc/asterisk",
      ami_via: "tunnel",
      ami_port: 5038,
      ami_user: "pbxdesk",
      ami_secret_set: true,
      db_via: "tunnel",
      db_port: 3306,
      db_name: "asterisk",
      db_user: "asterisk",
      db_password_set: true,
      connect_timeout_ms: 10000,
      command_timeout_ms: 30000,
      version: 1,
    };
    const fp = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";
    const trusted: string[] = [];
    mockIPC((cmd, args) => {
      const a = args as Record<string, unknown>;
      switch (cmd) {
        case "app_info":
          return {
            workspace: "/tmp/demo.sqlite",
            operator: "local:test",
            team: false,
            version: "0.1.0",
          };
        case "pbx_list":
          return [pbx];
        case "tenant_list":
          return [];
        case "pbx_show":
          return structuredClone(pbx);
        case "pbx_probe_host_key":
          return fp;
        case "pbx_trust":
          trusted.push(a.fingerprint as string);
          pbx.host_key = a.fingerprint as string;
          return structuredClone(pbx);
        case "pbx_check":
          return [
            { item: "SSH", ok: true, detail: "root@10.0.0.5:22 logged in", fix: null },
            {
              item: "include in pjsip.conf",
              ok: false,
              detail: "pjsip.conf does not include pjsip.d/pbxdesk",
              fix: "add the line `#tryinclude pjsip.d/pbxdesk/*.conf`",
            },
          ];
        default:
          throw { code: "internal", message: `unexpected command ${cmd}`, field: null };
      }
    });
    renderApp();
    const user = userEvent.setup();
    await user.click(await screen.findByTestId("pbx-pbx1"));
    await screen.findByText("host key not trusted");
    await user.click(screen.getByRole("button", { name: "Trust host key…" }));
    expect((await screen.findByTestId("offered-fingerprint")).textContent).toBe(fp);
    expect(trusted).toHaveLength(0);
    await user.click(screen.getByRole("button", { name: "Trust" }));
    await screen.findByText("host key pinned");
    expect(trusted).toEqual([fp]);
    await user.click(screen.getByRole("button", { name: "Check this PBX" }));
    const result = await screen.findByTestId("check-result");
    expect(result.textContent).toContain("pjsip.conf does not include pjsip.d/pbxdesk");
    expect(result.textContent).toContain("Fix: add the line `#tryinclude pjsip.d/pbxdesk/*.conf`");
  });
});

describe("the user list", () => {
  it("keeps only the visible rows of 10,000 users in the page, and filters", async () => {
    const users = Array.from({ length: 10_000 }, (_, i) => summary(i));
    render(
      <MantineProvider>
        <UserTable users={users} onEdit={() => {}} onToggleSuspend={() => {}} onDelete={() => {}} />
      </MantineProvider>,
    );
    const rows = screen.getAllByTestId("user-row");
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.length).toBeLessThan(100);
    expect(screen.getByTestId("user-count").textContent).toBe("10000 of 10000 users");
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Filter users"), "User 1999");
    await waitFor(() => expect(screen.getAllByTestId("user-row")).toHaveLength(1));
    expect(screen.getByTestId("user-ext").textContent).toBe("2999");
    expect(screen.getByTestId("user-count").textContent).toBe("1 of 10000 users");
  });

  it("marks the row it is asked to, the user just created", () => {
    const users = Array.from({ length: 5 }, (_, i) => summary(i));
    render(
      <MantineProvider>
        <UserTable
          users={users}
          highlight={users[3].id}
          onEdit={() => {}}
          onToggleSuspend={() => {}}
          onDelete={() => {}}
        />
      </MantineProvider>,
    );
    const marked = document.querySelector('[data-highlighted="true"] [data-testid="user-ext"]');
    expect(marked?.textContent).toBe(String(users[3].extension));
    expect(document.querySelectorAll('[data-highlighted="true"]').length).toBe(1);
  });

  it("finds a name without its accents, and says when nothing matches", async () => {
    const users = [
      { ...summary(0), display_name: "José Álvarez", email: "jose@acme.example" },
      { ...summary(1), display_name: "Ann Example" },
    ];
    render(
      <MantineProvider>
        <UserTable users={users} onEdit={() => {}} onToggleSuspend={() => {}} onDelete={() => {}} />
      </MantineProvider>,
    );
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Filter users"), "alvarez");
    await waitFor(() => expect(screen.getAllByTestId("user-row")).toHaveLength(1));
    expect(screen.getByTestId("user-count").textContent).toBe("1 of 2 users");
    await user.clear(screen.getByLabelText("Filter users"));
    await user.type(screen.getByLabelText("Filter users"), "nobody");
    expect((await screen.findByTestId("user-empty")).textContent).toBe('No user matches "nobody".');
  });
});

describe("a device's SIP password", () => {
  it("is shown on request and renewed on request, each a call of its own", async () => {
    const backend = fakeBackend();
    const user = await editNewUser();
    const id = backend.users[0].devices[0].id;
    await user.click(await screen.findByTestId(`device-reveal-${id}`));
    expect((await screen.findByTestId(`device-password-${id}`)).textContent).toBe(
      "old-Secret-1234567",
    );
    await user.click(screen.getByText("Hide"));
    await user.click(await screen.findByTestId(`device-renew-${id}`));
    expect((await screen.findByTestId(`device-password-${id}`)).textContent).toBe(
      "new-Secret-7654321",
    );
    expect(screen.getByText("new: the phone needs it after the next apply")).toBeTruthy();
    expect(backend.calls).toContain(`device_reveal:${id}`);
    expect(backend.calls).toContain(`device_new_password:${id}`);
  });
});
