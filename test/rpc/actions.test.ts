/**
 * Requests to Actions: VDSM's raw payload is checked at the edge, in the caller's own
 * field names, before anything is built from it.
 */
import assert from 'node:assert/strict';
import { AgentError } from '../../src/errors.js';
import { parseAction } from '../../src/rpc/actions.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const META = { 'openstack/latest/meta_data.json': b64('{"uuid": "iid-raw-1"}') };

function problems(params: unknown): string[] {
  try {
    parseAction('Payload.attach', params);
  } catch (err) {
    assert.ok(err instanceof AgentError && err.code === 'INVALID_PARAMS', String(err));
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return assert.fail('accepted');
}

describe('rpc actions: VDSM raw payloads', () => {
  it('takes volId as the volume label', () => {
    const action = parseAction('Payload.attach', { domain: 'vm1', files: { volId: 'OEMDRV', file: { 'autounattend.xml': b64('<x/>') } } });
    assert.ok(action.method === 'Payload.attach' && action.source.kind === 'raw-files');
    assert.equal(action.source.label, 'OEMDRV');
    assert.deepEqual([...action.source.tree.keys()], ['autounattend.xml']);
  });

  it('refuses paths a drive cannot hold, by their key in params.files.file', () => {
    assert.deepEqual(problems({ domain: 'vm1', files: { file: { ...META, '../etc/passwd': b64('x'), '/abs': b64('y') } } }), [
      'params.files.file["../etc/passwd"]: "../etc/passwd" contains ".."',
      'params.files.file["/abs"]: "/abs" is absolute; paths on a drive are relative to its root',
    ]);
    assert.equal(problems({ domain: 'vm1', files: { file: { ...META, 'a\u0000b': b64('x') } } }).length, 1);
  });

  it('refuses a config-2 payload without meta_data.json and its uuid, as a pre-built drive is refused', () => {
    const missing = ['params.files.file: a config-2 payload needs openstack/latest/meta_data.json with a uuid (the instance-id): cloud-init would reject the drive'];
    assert.deepEqual(problems({ domain: 'vm1', files: { file: { 'openstack/latest/user_data': b64('#cloud-config\n') } } }), missing);
    assert.deepEqual(problems({ domain: 'vm1', files: { volId: 'config-2', file: { 'openstack/latest/meta_data.json': b64('{}') } } }), missing);
    assert.doesNotThrow(() => parseAction('Payload.attach', { domain: 'vm1', files: { file: META } }));
  });

  it('refuses a volId no volume can carry, by its field', () => {
    assert.deepEqual(problems({ domain: 'vm1', files: { volId: 'label ', file: META } }), ['params.files.volId: must be 1 to 32 printable ASCII characters without trailing spaces']);
  });
});

describe('rpc actions: the drive format', () => {
  const SEED = '<initialization><host_name>h</host_name></initialization>';

  it('takes driveFormat for an initialization on Payload.build, Payload.attach and VM.start', () => {
    for (const method of ['Payload.build', 'Payload.attach', 'VM.start']) {
      const action = parseAction(method, { domain: 'vm1', initialization: SEED, format: 'xml', driveFormat: 'nocloud' });
      assert.ok('source' in action && action.source.kind === 'initialization', method);
      assert.deepEqual([action.source.format, action.source.driveFormat], ['xml', 'nocloud'], method);
    }
    const plain = parseAction('VM.start', { domain: 'vm1', initialization: SEED });
    assert.ok(plain.method === 'VM.start' && plain.source.kind === 'initialization');
    assert.equal(plain.source.driveFormat, undefined, 'absent: the daemon builds config-2');
  });

  it('refuses a driveFormat it does not know, by its field, whatever the value', () => {
    const hostile: unknown[] = ['NoCloud', 'cidata', 'config-2', '', ' nocloud', 'nocloud\u0000', 'x'.repeat(100_000), 1, true, null, ['nocloud'], { nocloud: true }];
    for (const driveFormat of hostile) {
      const found = problems({ domain: 'vm1', initialization: SEED, driveFormat });
      assert.deepEqual(found, ['params.driveFormat: must be equal to one of the allowed values'], JSON.stringify(driveFormat).slice(0, 40));
    }
  });

  it('refuses driveFormat beside a raw payload or a pre-built drive, which it would not change', () => {
    assert.deepEqual(problems({ domain: 'vm1', files: { file: META }, driveFormat: 'nocloud' }), ['params.driveFormat: applies to an initialization only']);
    assert.deepEqual(problems({ domain: 'vm1', image: '/var/lib/configdrived/x.iso', driveFormat: 'configdrive' }), ['params.driveFormat: applies to an initialization only']);
  });
});
