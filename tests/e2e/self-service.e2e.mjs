// The self-service page of `pbxdesk serve` in Chromium, driven over WebDriver: a user takes
// their invite, sees only themselves, sets DND, forwards and a PIN (refused input shown at its
// field), watches their phone register on the PBX double, logs out and in again. What the page
// says is checked against the workspace with the CLI.
import { execFileSync, spawn } from "node:child_process";
import { remote } from "webdriverio";

const env = process.env;
let passed = 0;
let failed = 0;
let browser = null;

async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed += 1;
    await browser?.saveScreenshot(`${env.SS_SHOTS}/self-failed-${failed}.png`).catch(() => {});
    console.log(`FAILED - ${name}\n${e?.stack ?? e}`);
  }
}

function assertEqual(actual, expected, what) {
  if (actual !== expected) throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

const cli = (...args) => JSON.parse(execFileSync(env.SS_CLI, ["--workspace", env.SS_WS, "--json", ...args]).toString());

// The PBX: the double points the demo PBX at itself and pins its host key.
const double = spawn(env.SS_DOUBLE, [], {
  stdio: ["pipe", "pipe", "inherit"],
  env: { ...env, PBXDESK_WORKSPACE: env.SS_WS },
});
await new Promise((resolve, reject) => {
  let out = "";
  double.stdout.on("data", (d) => {
    out += d;
    if (/ready \S+/.test(out)) resolve();
  });
  double.on("exit", (code) => reject(new Error(`the PBX double exited (${code})`)));
  setTimeout(() => reject(new Error("the PBX double did not start")), 60_000);
});
const phone = (line) => double.stdin.write(`${line}\n`);

browser = await remote({
  hostname: "127.0.0.1",
  port: Number(env.SS_DRIVER_PORT),
  logLevel: "warn",
  capabilities: {
    browserName: "chrome",
    "goog:chromeOptions": {
      binary: "/usr/lib/chromium/chromium",
      args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1400"],
    },
  },
});

const GRACE = "acme-dental/101";
const password = "Grace's own passphrase ✓";
const invite = cli("user", "invite", GRACE);
const field = (name) => browser.$(`input[name="${name}"]`);
const fieldError = async (name) => {
  const input = await field(name);
  const id = await input.getAttribute("aria-describedby");
  const ids = (id ?? "").split(" ").filter((x) => x.endsWith("-error"));
  return ids.length ? browser.$(`#${ids[0]}`).getText() : "";
};
const note = async () => {
  const n = await browser.$('[data-testid="note"]');
  await n.waitForDisplayed({ timeout: 10_000 });
  return n.getText();
};

try {
  await check("the invite's link sets the user's password and opens their page", async () => {
    await browser.url(`${env.SS_API}/self/?tenant=${invite.tenant}#invite=${invite.invite}`);
    await browser.$('[data-testid="accept"]').waitForDisplayed({ timeout: 15_000 });
    await (await field("new-password")).setValue(password);
    await (await field("repeat-password")).setValue(password);
    await browser.$("button=Set password").click();
    const name = await browser.$('[data-testid="me-name"]');
    await name.waitForDisplayed({ timeout: 10_000 });
    assertEqual(await name.getText(), "Grace Hopper", "name");
    const url = await browser.getUrl();
    if (url.includes("invite")) throw new Error(`the used invite stayed in the address: ${url}`);
  });

  await check("the page holds nothing of a colleague", async () => {
    const html = await browser.getPageSource();
    for (const colleague of ["Ada Lovelace", "Zoë O'Brien", "José Álvarez", "globex"]) {
      if (html.includes(colleague)) throw new Error(`the page shows ${colleague}`);
    }
  });

  await check("their phone's status follows the PBX: not registered, then registered", async () => {
    const badge = () => browser.$('[data-testid="device"] [data-status]');
    await browser.waitUntil(async () => (await (await badge()).getAttribute("data-status")) === "offline", {
      timeout: 15_000,
      timeoutMsg: "the device is not shown as not registered",
    });
    phone("register acme-dental-101 5070");
    await browser.waitUntil(
      async () => {
        await browser.$("button=Refresh").click();
        await browser.pause(300);
        return (await (await badge()).getAttribute("data-status")) === "registered";
      },
      { timeout: 15_000, timeoutMsg: "the registered phone is not shown as registered" },
    );
    await browser.saveScreenshot(`${env.SS_SHOTS}/self-service.png`);
  });

  await check("DND set on the page is on the PBX at once", async () => {
    await browser.$('[data-testid="dnd"]').click();
    const text = await note();
    if (!text.includes("on your phone now")) throw new Error(`note: ${text}`);
    const user = cli("user", "show", GRACE);
    assertEqual(user.dnd, true, "dnd in the workspace");
    assertEqual(user.features_pending, false, "pushed to the PBX");
  });

  await check("a forward that is not a number is refused at its field; a good one is saved", async () => {
    await (await field("forward_busy")).setValue("${SHELL(id)}");
    await browser.$("button=Save forwarding").click();
    await browser.waitUntil(async () => (await fieldError("forward_busy")) !== "", {
      timeout: 10_000,
      timeoutMsg: "no error at the forward's field",
    });
    assertEqual(cli("user", "show", GRACE).forward_busy, null, "nothing saved");
    await (await field("forward_busy")).setValue("102");
    await browser.$("button=Save forwarding").click();
    await note();
    assertEqual(cli("user", "show", GRACE).forward_busy, "102", "forward in the workspace");
  });

  await check("a PIN of letters is refused at its field; digits are saved", async () => {
    await (await field("pin")).setValue("12ab");
    await browser.$("button=Set PIN").click();
    await browser.waitUntil(async () => (await fieldError("pin")) !== "", { timeout: 10_000, timeoutMsg: "no PIN error" });
    assertEqual(cli("user", "show", GRACE).voicemail_pin_set, true, "the generated PIN stays");
    await (await field("pin")).setValue("4711");
    await browser.$("button=Set PIN").click();
    const text = await note();
    if (!text.startsWith("PIN saved")) throw new Error(`note: ${text}`);
  });

  await check("logging out ends the session; the password logs in again", async () => {
    await browser.$("button=Log out").click();
    await browser.$('[data-testid="login"]').waitForDisplayed({ timeout: 10_000 });
    assertEqual(await (await field("tenant")).getValue(), "acme-dental", "company from the link");
    await (await field("email")).setValue("grace@acme-dental.example");
    await (await field("password")).setValue("not my password!");
    await browser.$("button=Log in").click();
    await browser.$('[role="alert"]').waitForDisplayed({ timeout: 10_000 });
    await (await field("password")).setValue(password);
    await browser.$("button=Log in").click();
    await browser.$('[data-testid="me-name"]').waitForDisplayed({ timeout: 10_000 });
    assertEqual(await browser.$('[data-testid="dnd"]').isSelected(), true, "DND shown as set");
  });
} finally {
  await browser.deleteSession().catch(() => {});
  double.stdin.end();
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
