// A real OpenID Provider (panva/oidc-provider 9.x) for orgsync's end-to-end
// tests. One confidential client, PKCE (S256) required, accounts read from a
// JSON file on every lookup, logins through a form post (or `login_hint`),
// consent granted automatically.
//
// Settings (environment):
//   OP_PORT                  port on 127.0.0.1 (or argv[2]); 0 or unset picks a free one
//   OP_CLIENT_ID             client id                       [orgsync]
//   OP_CLIENT_SECRET         client secret                   [orgsync-secret]
//   OP_REDIRECT_URI          the client's redirect URI (required)
//   OP_ACCOUNTS_FILE         {"<sub>": {claims...}} (required), re-read on every lookup
//   OP_TAMPER_FILE           optional; re-read on every token response:
//                            {"id_token": {"set": {claim: value}, "unset": [claim],
//                                          "sign_with_other_key": bool}}
//                            rewrites and re-signs the ID token the token endpoint returns
//                            (with the provider's key, or with another key under the same kid)
//   OP_CONFORM_ID_TOKEN_CLAIMS  "true" (scope claims only in userinfo) or "false" [true]
//   OP_ID_TOKEN_LOG          optional; the payload of the last ID token issued is written there
//
// Refused grants are logged to stderr with their reason (`grant.error`).
//
// Once listening it prints one JSON line to stdout: {"issuer": "...", "port": N}.

import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const env = process.env;
const requested = Number(process.argv[2] ?? env.OP_PORT ?? 0);
const clientId = env.OP_CLIENT_ID || 'orgsync';
const clientSecret = env.OP_CLIENT_SECRET || 'orgsync-secret';
const redirectUri = env.OP_REDIRECT_URI;
const accountsFile = env.OP_ACCOUNTS_FILE;
const tamperFile = env.OP_TAMPER_FILE;
const idTokenLog = env.OP_ID_TOKEN_LOG;
const conform = (env.OP_CONFORM_ID_TOKEN_CLAIMS ?? 'true') !== 'false';

if (!redirectUri || !accountsFile) {
  console.error('OP_REDIRECT_URI and OP_ACCOUNTS_FILE are required');
  process.exit(2);
}

// (WebCrypto through jose: node 20's synchronous `KeyObject.export` of a fresh
// RSA key was seen to hang now and then when several providers start at once.)
async function rsaKey(kid) {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { privateKey, jwk: { ...jwk, kid, use: 'sig', alg: 'RS256' } };
}

// A fresh signing key per run, and an impostor under the same kid.
const kid = `k-${randomBytes(6).toString('hex')}`;
const signing = await rsaKey(kid);
const impostor = await rsaKey(kid);

function readJson(path, fallback) {
  if (!path) return fallback;
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    if (e.code === 'ENOENT') return fallback;
    throw e;
  }
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// The HTTP server exists first so that the issuer can carry the real port.
let handler = (_req, res) => { res.statusCode = 503; res.end(); };
const server = http.createServer((req, res) => handler(req, res));
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(requested, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signing.jwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups', 'roles', 'department', 'teams'],
  },
  conformIdTokenClaims: conform,
  features: {
    devInteractions: { enabled: false },
  },
  pkce: { required: () => true },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 120,
    IdToken: 600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  async findAccount(_ctx, sub) {
    const account = readJson(accountsFile, {})[sub];
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        // Re-read: tests change claims between logins.
        return { ...(readJson(accountsFile, {})[sub] ?? account), sub };
      },
    };
  },
  // No consent screen: every request is granted the scopes (and claims) it asks for.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
    const claims = Object.values(ctx.oidc.claims ?? {}).flatMap((c) => Object.keys(c ?? {}));
    if (claims.length) grant.addOIDCClaims(claims);
    await grant.save();
    return grant;
  },
});

// Tampering with the ID token of a token response, for the refusal tests, and
// the log of the last ID token.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== '/token' || ctx.status !== 200 || !ctx.body?.id_token) return;
  const tamper = readJson(tamperFile, {}).id_token;
  const [h, p] = ctx.body.id_token.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url').toString());
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
  if (tamper) {
    Object.assign(payload, tamper.set ?? {});
    for (const claim of tamper.unset ?? []) delete payload[claim];
    const key = tamper.sign_with_other_key ? impostor.privateKey : signing.privateKey;
    ctx.body = {
      ...ctx.body,
      id_token: await new jose.CompactSign(Buffer.from(JSON.stringify(payload)))
        .setProtectedHeader(header)
        .sign(key),
    };
  }
  if (idTokenLog) {
    writeFileSync(`${idTokenLog}.tmp`, JSON.stringify(payload));
    renameSync(`${idTokenLog}.tmp`, idTokenLog);
  }
});

function loginForm(uid, message = '') {
  return `<!doctype html><title>Sign in</title>
<p>${escapeHtml(message)}</p>
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<input name="login" placeholder="account (sub)" autofocus><button type="submit">Sign in</button>
</form>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.end(html);
}

// GET /interaction/:uid: login (auto with `login_hint`) or grant; POST
// /interaction/:uid/login: the form.
async function interaction(req, res, url) {
  const [, , uid, action] = url.pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'interaction mismatch');
  const { prompt, params } = details;
  if (req.method === 'POST' && action === 'login') {
    const login = (await readForm(req)).get('login') ?? '';
    if (!readJson(accountsFile, {})[login]) return send(res, 401, loginForm(uid, `unknown account ${login}`));
    return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') {
      if (params.login_hint && readJson(accountsFile, {})[params.login_hint]) {
        return provider.interactionFinished(req, res, { login: { accountId: params.login_hint } }, { mergeWithLastSubmission: false });
      }
      return send(res, 200, loginForm(uid));
    }
    // consent: grant what was asked (loadExistingGrant normally avoids this prompt).
    const grant = new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    grant.addOIDCScope(params.scope);
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return send(res, 404, 'not found');
}

const oidc = provider.callback();
handler = (req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname.startsWith('/interaction/')) {
    interaction(req, res, url).catch((e) => {
      console.error('interaction failed:', e);
      if (!res.headersSent) send(res, 500, escapeHtml(e.message));
    });
    return;
  }
  oidc(req, res);
};

provider.on('server_error', (_ctx, e) => console.error('server_error:', e));
provider.on('grant.error', (_ctx, e) => console.error(`grant.error: ${e.error}: ${e.error_detail ?? e.message}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
console.log(JSON.stringify({ issuer, port }));
