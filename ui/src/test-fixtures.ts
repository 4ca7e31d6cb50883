// Data the UI tests share.
import type { Tenant } from "./bindings";

export const acme: Tenant = {
  id: 1,
  pbx: "pbx1",
  name: "Acme Dental",
  slug: "acme",
  ext_range: "1000-1999",
  status: "active",
  country: "CH",
  unknown_did: "hangup",
  caller_id: null,
  default_policy: null,
  user_count: 0,
  version: 1,
};
