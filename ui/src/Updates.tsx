// Updates, in About: the update server (off until one is set), a check that only tells, and an
// install the technician starts for the very version shown. The backend checks the download's
// signature against the publisher's key built into the app before anything is installed.
import { Alert, Button, Group, Progress, Stack, Text, TextInput } from "@mantine/core";
import { Channel } from "@tauri-apps/api/core";
import { useEffect, useState } from "react";
import { call, type FieldErrors, fieldErrors } from "./api";
import { commands, type UpdateNews, type UpdateProgress, type UpdateSetup } from "./bindings";

type Step =
  | { kind: "idle" }
  | { kind: "checking" }
  | { kind: "news"; news: UpdateNews }
  | { kind: "installing"; version: string; downloaded: number; total: number | null }
  | { kind: "installed"; version: string };

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** What a check found, in words. */
export function newsLine(n: UpdateNews): string {
  const published = n.published ? ` (published ${n.published.slice(0, 10)})` : "";
  switch (n.standing) {
    case "newer":
      return `pbxdesk ${n.offered} is available${published}; this is ${n.installed}.`;
    case "current":
      return `pbxdesk ${n.installed} is the newest version.`;
    case "older":
      return `The server offers ${n.offered}, older than this ${n.installed}: nothing to install.`;
  }
}

export function UpdatesPanel() {
  const [setup, setSetup] = useState<UpdateSetup | null>(null);
  const [endpoint, setEndpoint] = useState("");
  const [ca, setCa] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [step, setStep] = useState<Step>({ kind: "idle" });
  const [failure, setFailure] = useState<string | null>(null);

  useEffect(() => {
    call(commands.updatesGet())
      .then((s) => {
        setSetup(s);
        setEndpoint(s.endpoint ?? "");
        setCa(s.ca_file ?? "");
      })
      .catch((e) => setErrors(fieldErrors(e)));
  }, []);

  async function keep(event: React.FormEvent) {
    event.preventDefault();
    setErrors({});
    try {
      setSetup(await call(commands.updatesSet(endpoint, ca)));
      setStep({ kind: "idle" });
    } catch (e) {
      setErrors(fieldErrors(e));
    }
  }

  async function check() {
    setFailure(null);
    setStep({ kind: "checking" });
    try {
      setStep({ kind: "news", news: await call(commands.updateCheck()) });
    } catch (e) {
      setStep({ kind: "idle" });
      setFailure(errorText(e));
    }
  }

  async function install(version: string) {
    setFailure(null);
    setStep({ kind: "installing", version, downloaded: 0, total: null });
    const progress = new Channel<UpdateProgress>();
    progress.onmessage = (p) =>
      setStep({ kind: "installing", version, downloaded: p.downloaded, total: p.total ?? null });
    try {
      const done = await call(commands.updateInstall(version, progress));
      setStep({ kind: "installed", version: done });
    } catch (e) {
      setStep({ kind: "idle" });
      setFailure(errorText(e));
    }
  }

  const configured = Boolean(setup?.endpoint);
  return (
    <Stack gap="xs" data-testid="updates">
      <form onSubmit={keep} aria-label="Update server">
        <Stack gap="xs">
          <TextInput
            label="Update server"
            description="The https:// address of the publisher's latest.json; empty: updates are off"
            placeholder="https://updates.example.net/pbxdesk/latest.json"
            value={endpoint}
            onChange={(e) => setEndpoint(e.currentTarget.value)}
            error={errors.update_endpoint}
            data-testid="update-endpoint"
          />
          <TextInput
            label="Its CA certificate (optional)"
            description="A PEM file, when the server's certificate is issued by a CA of your own"
            placeholder="/etc/ssl/msp-ca.pem"
            value={ca}
            onChange={(e) => setCa(e.currentTarget.value)}
            error={errors.update_ca_file}
            data-testid="update-ca"
          />
          {errors._form && <Alert color="red">{errors._form}</Alert>}
          <Group>
            <Button type="submit" size="xs" variant="light" data-testid="update-keep">
              Keep
            </Button>
            <Button
              size="xs"
              onClick={check}
              disabled={!configured || step.kind === "checking" || step.kind === "installing"}
              loading={step.kind === "checking"}
              data-testid="update-check"
            >
              Check for updates
            </Button>
          </Group>
        </Stack>
      </form>
      {!configured && (
        <Text size="xs" c="dimmed" data-testid="updates-off">
          Updates are off: pbxdesk looks for none until an update server is set.
        </Text>
      )}
      {failure && (
        <Alert color="red" title="Not updated" data-testid="update-error">
          {failure}
        </Alert>
      )}
      {step.kind === "news" && (
        <Alert
          color={step.news.standing === "newer" ? "blue" : "gray"}
          data-testid="update-news"
          data-standing={step.news.standing}
        >
          <Stack gap="xs">
            <Text size="sm">{newsLine(step.news)}</Text>
            {step.news.standing === "newer" && step.news.notes && (
              <Text size="sm" style={{ whiteSpace: "pre-wrap" }} data-testid="update-notes">
                {step.news.notes}
              </Text>
            )}
            {step.news.standing === "newer" && (
              <Group>
                <Button
                  size="xs"
                  onClick={() => install(step.news.offered)}
                  data-testid="update-install"
                >
                  Download and install {step.news.offered}
                </Button>
              </Group>
            )}
            {step.news.standing === "newer" && setup?.install_kind === "not_a_package" && (
              <Text size="xs" c="dimmed">
                This copy was not installed from the .deb or AppImage: the download is verified,
                then you install the package by hand.
              </Text>
            )}
          </Stack>
        </Alert>
      )}
      {step.kind === "installing" && (
        <Stack gap={4} data-testid="update-progress">
          <Text size="sm">Downloading {step.version} and checking its signature…</Text>
          <Progress
            value={step.total ? (100 * step.downloaded) / step.total : 100}
            animated={!step.total}
          />
        </Stack>
      )}
      {step.kind === "installed" && (
        <Alert color="green" data-testid="update-installed">
          <Group justify="space-between">
            <Text size="sm">pbxdesk {step.version} is installed; it runs after a restart.</Text>
            <Button size="xs" onClick={() => commands.appRestart()}>
              Restart now
            </Button>
          </Group>
        </Alert>
      )}
    </Stack>
  );
}

/** At start, when an update server is set: one quiet check, and a word when a newer version
 * is there. Nothing is downloaded; a failed check says nothing here (About shows why). */
export async function tellOfUpdate(show: (title: string, message: string) => void) {
  try {
    const setup = await call(commands.updatesGet());
    if (!setup.endpoint) return;
    const news = await call(commands.updateCheck());
    if (news.standing === "newer") {
      show(
        `pbxdesk ${news.offered} is available`,
        "About → Updates shows what is new and installs it when you choose.",
      );
    }
  } catch {
    // Offline at a customer's site is normal: the check is tried again at the next start.
  }
}
