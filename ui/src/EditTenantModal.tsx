import { Alert, Button, Group, Modal, Stack, TextInput } from "@mantine/core";
import { useEffect, useState } from "react";
import { call, type FieldErrors, fieldErrors } from "./api";
import { commands, type Tenant } from "./bindings";

interface Props {
  tenant: Tenant | null;
  onClose: () => void;
  onSaved: (t: Tenant) => void;
}

/** Name and extension range; the slug never changes (it names the tenant's contexts). */
export function EditTenantModal({ tenant, onClose, onSaved }: Props) {
  const [name, setName] = useState("");
  const [range, setRange] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!tenant) return;
    setName(tenant.name);
    setRange(tenant.ext_range);
    setErrors({});
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
