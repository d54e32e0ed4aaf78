import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeNatsAuth, natsAuthFromFlags, NatsAuthConfigError, natsUrlWithAuth, redactNatsUrl, splitNatsUrl } from './nats-url.js';

test('nats url - credentials split off a url: user:pass is a user, a lone userinfo a token; percent-escapes decoded', () => {
  assert.deepEqual(splitNatsUrl('nats://127.0.0.1:4222'), { url: 'nats://127.0.0.1:4222', auth: {} });
  assert.deepEqual(splitNatsUrl('nats://bob:p%40ss@10.0.0.1:4222'), {
    url: 'nats://10.0.0.1:4222',
    auth: { user: 'bob', password: 'p@ss' },
  });
  assert.deepEqual(splitNatsUrl('nats://s3cret@host:1'), { url: 'nats://host:1', auth: { token: 's3cret' } });
  assert.deepEqual(splitNatsUrl('127.0.0.1:4222'), { url: '127.0.0.1:4222', auth: {} });
});

test('nats url - embedding round-trips through splitting, and redaction hides what was embedded', () => {
  for (const auth of [{ user: 'a b', password: 'p@ss:w/rd' }, { token: 't/k@n' }]) {
    const url = natsUrlWithAuth('nats://127.0.0.1:4222', auth);
    assert.deepEqual(splitNatsUrl(url), { url: 'nats://127.0.0.1:4222', auth });
    const shown = redactNatsUrl(url);
    assert.equal(shown, 'nats://***@127.0.0.1:4222');
  }
  assert.equal(natsUrlWithAuth('nats://h:1', {}), 'nats://h:1');
  assert.throws(() => natsUrlWithAuth('h:1', { token: 'x' }), NatsAuthConfigError);
});

test('nats url - flags: a user needs a password, a token excludes a user, TLS cert and key come together', () => {
  assert.deepEqual(natsAuthFromFlags({ natsUser: 'u', natsPass: 'p' }), { user: 'u', password: 'p' });
  assert.deepEqual(natsAuthFromFlags({ natsToken: 't', natsTlsCa: 'ca.pem' }), { token: 't', tls: { caFile: 'ca.pem' } });
  assert.throws(() => natsAuthFromFlags({ natsUser: 'u' }), /--nats-user needs --nats-pass/);
  assert.throws(() => natsAuthFromFlags({ natsToken: 't', natsUser: 'u', natsPass: 'p' }), /--nats-token excludes/);
  assert.throws(() => natsAuthFromFlags({ natsTlsCert: 'c.pem' }), /--nats-tls-cert needs --nats-tls-key/);
});

test('nats url - explicit credentials replace those of the url by kind, TLS files are kept', () => {
  assert.deepEqual(mergeNatsAuth({ user: 'u', password: 'p' }, { token: 't' }), { token: 't' });
  assert.deepEqual(mergeNatsAuth({ token: 't', tls: { caFile: 'a' } }, {}), { token: 't', tls: { caFile: 'a' } });
  assert.deepEqual(mergeNatsAuth({ token: 't' }, { user: 'u', password: 'p', tls: { caFile: 'b' } }), {
    user: 'u',
    password: 'p',
    tls: { caFile: 'b' },
  });
});
