import { Alert, Button, Group, Modal, Select, SimpleGrid, Stack, TextInput } from "@mantine/core";
import { useEffect, useState } from "react";
import { call, type FieldErrors, fieldErrors } from "./api";
import { commands, type Tenant } from "./bindings";

interface Props {
  tenant: Tenant | null;
  onClose: () => void;
  onSaved: (t: Tenant) => void;
}

/** Name, extension range and routing defaults; the slug never changes (it names the
 * tenant's contexts). */
export function EditTenantModal({ tenant, onClose, onSaved }: Props) {
  const [name, setName] = useState("");
  const [range, setRange] = useState("");
  const [country, setCountry] = useState("CH");
  const [unknownDid, setUnknownDid] = useState("hangup");
  const [callerId, setCallerId] = useState("");
  const [defaultPolicy, setDefaultPolicy] = useState("");
  const [policies, setPolicies] = useState<string[]>([]);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!tenant) return;
    setName(tenant.name);
    setRange(tenant.ext_range);
    setCountry(tenant.country);
    setUnknownDid(tenant.unknown_did);
    setCallerId(tenant.caller_id ?? "");
    setDefaultPolicy(tenant.default_policy ?? "");
    setErrors({});
    call(commands.policyList(tenant.slug))
      .then((list) => setPolicies(list.map((p) => p.name)))
      .catch(() => setPolicies([]));
  }, [tenant]);

  if (!tenant) return null;

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    if (!tenant) return;
    setBusy(true);
    setErrors({});
    try {
      onSaved(
        await call(
          commands.tenantUpdate(tenant.slug, {
            name,
            ext_range: range,
            country,
            unknown_did: unknownDid,
            caller_id: callerId,
            default_policy: defaultPolicy,
            expected_version: tenant.version,
          }),
        ),
      );
    } catch (e) {
      setErrors(fieldErrors(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal opened onClose={onClose} title={`Edit tenant ${tenant.slug}`}>
      <form onSubmit={submit}>
        <Stack>
          <TextInput
            label="Name"
            value={name}
            onChange={(e) => setName(e.currentTarget.value)}
            error={errors.name}
          />
          <TextInput
            label="Extension range"
            description="Live users must stay inside it"
            value={range}
            onChange={(e) => setRange(e.currentTarget.value)}
            error={errors.ext_range}
          />
          <SimpleGrid cols={2}>
            <Select
              label="Country"
              description="National numbers, emergency numbers"
              data={["CH", "DE", "AT", "FR", "GB", "NL", "US", "CA"]}
              value={country}
              onChange={(v) => v && setCountry(v)}
              error={errors.country}
            />
            <Select
              label="Default outbound policy"
              description="For users without their own"
              data={[
                { value: "", label: "(none: internal and emergency only)" },
                ...policies.map((p) => ({ value: p, label: p })),
              ]}
              value={defaultPolicy}
              onChange={(v) => setDefaultPolicy(v ?? "")}
              error={errors.default_policy}
            />
          </SimpleGrid>
          <TextInput
            label="Unassigned numbers go to"
            description="user:EXT, voicemail:EXT, external:+NUMBER or hangup"
            value={unknownDid}
            onChange={(e) => setUnknownDid(e.currentTarget.value)}
            error={errors.destination ?? errors.unknown_did}
          />
          <TextInput
            label="Outbound caller ID"
            description="E.164, for users without their own; empty for none"
            value={callerId}
            onChange={(e) => setCallerId(e.currentTarget.value)}
            error={errors.caller_id}
          />
          {errors._form && <Alert color="red">{errors._form}</Alert>}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={busy}>
              Save
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
