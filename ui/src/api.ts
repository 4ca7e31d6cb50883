// The UI's one door to the backend: the generated bindings, with their typed error turned
// into an exception that keeps the code and the field.
import type { ApiError, Refusal } from "./bindings";

export class ApiFailure extends Error {
  readonly code: ApiError["code"];
  readonly field: string | null;
  /** Why an apply was refused (code "refused"): the UI offers what fixes it. */
  readonly refusal: Refusal | null;
  /** Every wrong input field, each with its message worded for that field. */
  readonly fields: { field: string; message: string }[];

  constructor(error: ApiError) {
    super(error.message);
    this.code = error.code;
    this.field = error.field ?? null;
    this.refusal = error.refusal ?? null;
    this.fields = error.fields ?? [];
  }
}

type Outcome<T> = { status: "ok"; data: T } | { status: "error"; error: ApiError };

export async function call<T>(pending: Promise<Outcome<T>>): Promise<T> {
  const outcome = await pending;
  if (outcome.status === "ok") return outcome.data;
  throw new ApiFailure(outcome.error);
}

/** Errors keyed by input field, plus one for the form as a whole. */
export type FieldErrors = Record<string, string>;

export function fieldErrors(e: unknown): FieldErrors {
  if (e instanceof ApiFailure && e.fields.length > 0) {
    return Object.fromEntries(e.fields.map((f) => [f.field, f.message]));
  }
  if (e instanceof ApiFailure) {
    // Shown at its field, the message need not start with the field's internal name.
    const prefix = `${e.field}: `;
    const text =
      e.field && e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
    return { [e.field ?? "_form"]: text };
  }
  return { _form: e instanceof Error ? e.message : String(e) };
}
