// Start-up marks for the start-up bench (tests/startup): once a screen is painted, the backend
// notes the time and its memory, when PBXDESK_STARTUP_MARK names a file (otherwise nothing).
import { commands } from "./bindings";

const marked = new Set<string>();

/** Marks `screen` as painted after the frame that shows it (two animation frames: the first
 * runs before the browser paints, the second after). Once per screen. */
export function markPainted(screen: "app" | "users") {
  if (marked.has(screen)) return;
  marked.add(screen);
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      commands.startupPainted(screen).catch(() => {});
    }),
  );
}
