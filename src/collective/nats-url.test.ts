import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  mergeNatsAuth,
  natsAuthFromFlags,
  NatsAuthConfigError,
  natsServerList,
  NatsUrlError,
  natsUrlWithAuth,
  parseNatsServers,
  redactNatsUrl,
  splitNatsServers,
  splitNatsUrl,
} from './nats-url.js';

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

test('nats url - a seed list: comma-separated or repeated, each entry checked, bare host:port taken as nats://', () => {
  assert.deepEqual(parseNatsServers('nats://a:4222,nats://b:4222, nats://c:4222'), ['nats://a:4222', 'nats://b:4222', 'nats://c:4222']);
  assert.deepEqual(parseNatsServers(['nats://a:1', 'b:2,tls://c']), ['nats://a:1', 'nats://b:2', 'tls://c']);
  assert.deepEqual(parseNatsServers('nats://u:p@a:1'), ['nats://u:p@a:1']);
  const bad: Array<[string | string[], RegExp]> = [
    ['nats://a:1,', /--nats entry 2 is empty/],
    ['', /no NATS url given/],
    ['nats://a:1,http://b:2', /--nats entry 2 'http:\/\/b:2': scheme http:\/\/ is not nats:\/\/ or tls:\/\//],
    ['nats://a:1,nats://b:99999', /--nats entry 2 'nats:\/\/b:99999'/],
    ['nats://a:0', /port must be 1 to 65535/],
    ['nats://a:1/x', /nothing after the port/],
    [['nats://a:1', 'nats://a:1'], /entry 2 'nats:\/\/a:1' is listed twice/],
    ['nats://u:secret@a:1,nats://u:secret@a:1', /entry 2 'nats:\/\/\*\*\*@a:1' is listed twice/],
  ];
  for (const [input, re] of bad)
    assert.throws(
      () => parseNatsServers(input),
      (e: unknown) => e instanceof NatsUrlError && re.test((e as Error).message),
      String(input),
    );
  assert.throws(
    () => parseNatsServers('nats://u:secret@a:b'),
    (e: unknown) => e instanceof NatsUrlError && !(e as Error).message.includes('secret'),
  );
});

test('nats url - a seed list: credentials embedded in, split off and redacted from every entry; different ones refused', () => {
  const list = natsUrlWithAuth('nats://a:1,nats://b:2', { user: 'u', password: 'p@ss' });
  assert.equal(list, 'nats://u:p%40ss@a:1,nats://u:p%40ss@b:2');
  assert.equal(redactNatsUrl(list), 'nats://***@a:1,nats://***@b:2');
  assert.equal(redactNatsUrl('nats://a:1,tok@b:2,nats://x:y/z@c:3'), 'nats://a:1,***@b:2,nats://***@c:3');
  assert.deepEqual(splitNatsServers(natsServerList(list)), { urls: ['nats://a:1', 'nats://b:2'], auth: { user: 'u', password: 'p@ss' } });
  assert.deepEqual(splitNatsServers(['nats://t@a:1', 'nats://b:2']), { urls: ['nats://a:1', 'nats://b:2'], auth: { token: 't' } });
  assert.throws(
    () => splitNatsServers(['nats://u:p1@a:1', 'nats://u:p2@b:2']),
    (e: unknown) =>
      e instanceof NatsAuthConfigError && /different credentials/.test((e as Error).message) && !/p1|p2/.test((e as Error).message),
  );
});
