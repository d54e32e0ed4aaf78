import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NatsAuthConfigError } from '../collective/nats-url.js';
import { natsAuthFromOptions } from './security-options.js';

test('security options - NATS credentials default from the environment; a flag of one kind hides the other kind from the environment', () => {
  const env = { BNN_NATS_USER: 'env-user', BNN_NATS_PASS: 'env-pass', BNN_NATS_TOKEN: '' };
  assert.deepEqual(natsAuthFromOptions({}, env), { user: 'env-user', password: 'env-pass' });
  assert.deepEqual(natsAuthFromOptions({ natsToken: 'flag-token' }, env), { token: 'flag-token' });
  assert.deepEqual(natsAuthFromOptions({ natsPass: 'flag-pass' }, env), { user: 'env-user', password: 'flag-pass' });
  assert.deepEqual(natsAuthFromOptions({}, { BNN_NATS_TOKEN: 't' }), { token: 't' });
  assert.deepEqual(natsAuthFromOptions({}, {}), {});
});

test('security options - a NATS TLS file that does not exist is named with its flag', () => {
  assert.throws(
    () => natsAuthFromOptions({ natsTlsCa: '/no/such/ca.pem' }, {}),
    (err: unknown) => err instanceof NatsAuthConfigError && /--nats-tls-ca \/no\/such\/ca\.pem does not exist/.test(err.message),
  );
});
