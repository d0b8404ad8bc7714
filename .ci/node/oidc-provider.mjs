// A real OpenID provider for the single sign-on tests: panva's oidc-provider (certified by
// the OpenID Foundation) with its development login and consent forms, on 127.0.0.1 and a
// port the system picks. Started by crates/embargo-test-support/src/oidc_provider.rs.
//
//   node oidc-provider.mjs CONFIG.json
//
// CONFIG: { "client_id", "client_secret", "redirect_uris": [...],
//           "accounts": { "<subject>": { "email": "..." } } }
// Prints one line, {"issuer": "http://127.0.0.1:PORT"}, once it listens.
//
// Any password signs in (development interactions); the login name is the subject (`sub`),
// its `email` comes from CONFIG.
//
// For the tests of what Embargo refuses, POST /__test/tamper with a mode makes the next
// token answers (and only those) pass through a small man-in-the-middle between Embargo and
// the token endpoint; "off" ends it:
//   signature  flip a byte of the ID token's signature
//   claim      change `sub` to another account's, keeping the signature
//   none       `alg: none`, no signature, `sub` changed
//   nonce | aud | iss | expired | azp | mfa   re-signed with the provider's own key
//              (so only the claim is wrong): another nonce, another audience, another
//              issuer, expired an hour ago, issued to another client, amr ["pwd","mfa"]
//   rotate     re-signed with a new key published in the JWKS from now on (a rotation)
//   discovery  the discovery document names another issuer (read by the next discovery)
import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const accounts = config.accounts || {};

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'key-1', alg: 'RS256', use: 'sig' };
const { privateKey: rotatedKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const rotatedJwk = { ...rotatedKey.export({ format: 'jwk' }), kid: 'key-2', alg: 'RS256', use: 'sig' };
const publicOf = (jwk) => ({ kty: jwk.kty, n: jwk.n, e: jwk.e, kid: jwk.kid, alg: jwk.alg, use: jwk.use });

let tamper = 'off';
let rotated = false;

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: config.client_id,
      client_secret: config.client_secret,
      redirect_uris: config.redirect_uris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [signingJwk] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    // Put the requested claims in the ID token, as Keycloak, Google and Entra ID do (by
    // default oidc-provider keeps them for the userinfo endpoint, which Embargo does not
    // call: the address it shows beside a linked identity comes from the ID token).
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    async findAccount(ctx, id) {
      const account = accounts[id] || {};
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: account.email, email_verified: true };
        },
      };
    },
  });
  const callback = provider.callback();

  const otherSub = Object.keys(accounts)[0] || 'someone-else';

  async function rewrite(idToken) {
    const [h, p, s] = idToken.split('.');
    const payload = JSON.parse(Buffer.from(p, 'base64url'));
    const resign = async (claims, jwk = signingJwk) => {
      const key = await jose.importJWK(jwk, 'RS256');
      return new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'JWT' }).sign(key);
    };
    const now = Math.floor(Date.now() / 1000);
    switch (tamper) {
      case 'signature': {
        const sig = Buffer.from(s, 'base64url');
        sig[sig.length >> 1] ^= 0x01;
        return `${h}.${p}.${sig.toString('base64url')}`;
      }
      case 'claim': {
        payload.sub = payload.sub === otherSub ? `${otherSub}-x` : otherSub;
        return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
      }
      case 'none': {
        payload.sub = otherSub;
        const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
        return `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.`;
      }
      case 'nonce': return resign({ ...payload, nonce: 'another-nonce' });
      case 'aud': return resign({ ...payload, aud: 'another-client', azp: undefined });
      case 'iss': return resign({ ...payload, iss: 'http://127.0.0.1:1' });
      case 'expired': return resign({ ...payload, iat: now - 7200, exp: now - 3600 });
      case 'azp': return resign({ ...payload, aud: [payload.aud, 'another-client'], azp: 'another-client' });
      case 'mfa': return resign({ ...payload, amr: ['pwd', 'mfa'] });
      case 'rotate': rotated = true; return resign(payload, rotatedJwk);
      default: return idToken;
    }
  }

  server.on('request', (req, res) => {
    const path = new URL(req.url, issuer).pathname;
    if (req.method === 'POST' && path === '/__test/tamper') {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => { tamper = body.trim() || 'off'; res.end('ok'); });
      return;
    }
    if (req.method === 'GET' && path === '/__test/ping') {
      res.end('ok');
      return;
    }
    const intercept = (transform) => {
      const end = res.end.bind(res);
      res.end = (chunk, ...rest) => {
        if (!chunk || res.statusCode !== 200) return end(chunk, ...rest);
        Promise.resolve(transform(JSON.parse(chunk.toString()))).then((body) => {
          const text = JSON.stringify(body);
          if (!res.headersSent) res.setHeader('content-length', Buffer.byteLength(text));
          end(text);
        }, (err) => { res.statusCode = 500; end(String(err)); });
        return res;
      };
    };
    if (tamper === 'discovery' && path === '/.well-known/openid-configuration') {
      intercept((doc) => ({ ...doc, issuer: 'http://127.0.0.1:1' }));
    } else if (rotated && path === '/jwks') {
      intercept((doc) => ({ keys: [publicOf(rotatedJwk), ...doc.keys] }));
    } else if (tamper !== 'off' && tamper !== 'discovery' && req.method === 'POST' && path === '/token') {
      intercept(async (body) => (body.id_token ? { ...body, id_token: await rewrite(body.id_token) } : body));
    }
    callback(req, res);
  });
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
