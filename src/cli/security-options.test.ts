import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NatsAuthConfigError } from '../collective/nats-url.js';
import { natsAuthFromOptions } from './security-options.js';

test('security options - NATS credentials default from the environment; a flag of one kind hides the other kind from the environment', () => {
  // what commander hands over with BNN_NATS_USER=env-user BNN_NATS_PASS=env-pass BNN_NATS_TOKEN='' set, plus the typed flags
  const env = { natsUser: 'env-user', natsPass: 'env-pass', natsToken: '' };
  const fromEnv = (typed: object) => (k: string) => !(k in typed) && k in env;
  const auth = (typed: object) => natsAuthFromOptions({ ...env, ...typed }, fromEnv(typed));
  assert.deepEqual(auth({}), { user: 'env-user', password: 'env-pass' });
  assert.deepEqual(auth({ natsToken: 'flag-token' }), { token: 'flag-token' });
  assert.deepEqual(auth({ natsPass: 'flag-pass' }), { user: 'env-user', password: 'flag-pass' });
  assert.deepEqual(
    natsAuthFromOptions({ natsToken: 't' }, () => true),
    { token: 't' },
  );
  assert.deepEqual(natsAuthFromOptions({}), {});
});

test('security options - a NATS TLS file that does not exist is named with its flag', () => {
  assert.throws(
    () => natsAuthFromOptions({ natsTlsCa: '/no/such/ca.pem' }),
    (err: unknown) => err instanceof NatsAuthConfigError && /--nats-tls-ca \/no\/such\/ca\.pem does not exist/.test(err.message),
  );
});
