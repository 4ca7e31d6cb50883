import { Alert, Button, Group, Modal, Select, Stack, TextInput } from "@mantine/core";
import { useEffect, useState } from "react";
import { call, type FieldErrors, fieldErrors } from "./api";
import { commands, type Pbx, type Tenant } from "./bindings";

interface Props {
  opened: boolean;
  onClose: () => void;
  onCreated: (t: Tenant) => void;
}

export function NewTenantModal({ opened, onClose, onCreated }: Props) {
  const [pbxes, setPbxes] = useState<Pbx[]>([]);
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [pbx, setPbx] = useState<string | null>(null);
  const [range, setRange] = useState("1000-1999");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!opened) return;
    call(commands.pbxList())
      .then((list) => {
        setPbxes(list);
        setPbx((p) => p ?? list[0]?.name ?? null);
      })
      .catch((e) => setErrors(fieldErrors(e)));
  }, [opened]);

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      const t = await call(
        commands.tenantCreate({ name, slug: slug || null, pbx: pbx ?? "", ext_range: range }),
      );
      setName("");
      setSlug("");
      onCreated(t);
    } catch (e) {
      setErrors(fieldErrors(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal opened={opened} onClose={onClose} title="New tenant">
      <form onSubmit={submit}>
        <Stack>
          <TextInput
            label="Name"
            required
            value={name}
            onChange={(e) => setName(e.currentTarget.value)}
            error={errors.name}
          />
          <TextInput
            label="Slug"
            description="Stable short name; derived from the name when empty"
            value={slug}
            onChange={(e) => setSlug(e.currentTarget.value)}
            error={errors.slug}
          />
          <Select
            label="PBX"
            data={pbxes.map((p) => p.name)}
            value={pbx}
            onChange={setPbx}
            error={errors.pbx}
            placeholder={pbxes.length === 0 ? "Add a PBX first (pbxdesk pbx add)" : undefined}
          />
          <TextInput
            label="Extension range"
            value={range}
            onChange={(e) => setRange(e.currentTarget.value)}
            error={errors.ext_range}
          />
          {errors._form && <Alert color="red">{errors._form}</Alert>}
          <Group justify="flex-end">
            <Button type="submit" loading={busy}>
              Create tenant
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
