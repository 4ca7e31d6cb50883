// Where a call can go, as the workspace writes it ("user:101", "voicemail:101",
// "ring_group:190", "external:+41…", "hangup"): the choices a destination field offers, and a
// destination with the name of whom or what it reaches.
import type { RingGroup, UserSummary } from "./bindings";

/** Every destination of the tenant's people and groups (`except`: a group's own extension). */
export function destinationChoices(
  people: UserSummary[],
  groups: RingGroup[],
  except?: number,
): string[] {
  return [
    ...people.map((u) => `user:${u.extension}`),
    ...people.map((u) => `voicemail:${u.extension}`),
    ...groups.filter((g) => g.extension !== except).map((g) => `ring_group:${g.extension}`),
    "hangup",
  ];
}

/** "user:101" → "user:101 · Ann Example"; a ring group by its name; anything else as it is. */
export function describeDestination(
  dest: string,
  people: UserSummary[],
  groups: RingGroup[],
): string {
  const [kind, value] = dest.split(":");
  if (value === undefined) return dest;
  const ext = Number(value);
  const who =
    kind === "ring_group"
      ? groups.find((g) => g.extension === ext)?.name
      : kind === "user" || kind === "voicemail"
        ? people.find((u) => u.extension === ext)?.display_name
        : undefined;
  return who ? `${dest} · ${who}` : dest;
}
