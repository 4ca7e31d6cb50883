/** The self-service API (`/api/v1/me`), same origin as the page. */

export interface Me {
  tenant: string;
  extension: number;
  display_name: string;
  email: string;
  dnd: boolean;
  forward_always: string | null;
  forward_busy: string | null;
  forward_no_answer: string | null;
  features_pending: boolean;
  voicemail_enabled: boolean;
  voicemail_pin_set: boolean;
  voicemail_pin_pending: boolean;
  version: number;
}

export type DeviceStatus = "registered" | "unreachable" | "offline" | "unknown";

export interface MeDevice {
  label: string;
  sip_username: string;
  status: DeviceStatus;
  contacts: string[];
}

export interface Session {
  token: string;
  expires_in: number;
}

/** An error as the API words it: `field` names the input it concerns. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly field: string | null,
  ) {
    super(message);
  }
}

const KEY = "pbxdesk.self.token";

/** The session lives in this tab only: closing it logs out. */
export const session = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (t: string) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  const token = session.get();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return undefined as T;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    if (res.status === 401 && path !== "/me/login" && path !== "/me/accept") session.clear();
    throw new ApiError(
      data.message ?? `${res.status} ${res.statusText}`,
      res.status,
      data.field ?? null,
    );
  }
  return data as T;
}

export const api = {
  accept: (invite: string, password: string) =>
    call<Session>("POST", "/me/accept", { invite, password }),
  login: (tenant: string, email: string, password: string) =>
    call<Session>("POST", "/me/login", { tenant, email, password }),
  logout: () => call<void>("POST", "/me/logout"),
  me: () => call<Me>("GET", "/me"),
  update: (
    patch: Partial<Pick<Me, "dnd" | "forward_always" | "forward_busy" | "forward_no_answer">> & {
      expected_version?: number;
    },
  ) => call<Me>("PATCH", "/me", patch),
  setPin: (pin: string) => call<Me>("PUT", "/me/voicemail-pin", { pin }),
  devices: () => call<MeDevice[]>("GET", "/me/devices"),
};
