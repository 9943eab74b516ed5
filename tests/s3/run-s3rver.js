#!/usr/bin/env node
/*
 * tests/s3/run-s3rver.js — the S3-compatible server of the integration
 * tests: s3rver (npm, installed by `cd tests/s3 && npm ci`) on loopback.
 *
 *   node run-s3rver.js --directory DIR [--port N] [--address A]
 *                      [--bucket NAME]... [--no-strict-auth] [--verbose]
 *
 * --port 0 (the default) lets the kernel pick a free port.  When the
 * server listens it prints one line "ready ADDRESS:PORT" on stdout; errors
 * go to stderr with exit status 1.  SIGTERM/SIGINT close it and exit 0.
 *
 * Buckets named with --bucket are created at start (kept when they exist).
 * Objects live as files under DIR, so a restart with the same DIR keeps
 * them.  Credentials: access key S3RVER, secret S3RVER (s3rver's account).
 *
 * What is checked (s3rver 3.7.1 by itself, plus this file):
 *   - no Authorization header: anonymous, allowed for everything;
 *   - any access key other than S3RVER: 403 InvalidAccessKeyId;
 *   - Signature V2 ("AWS key:sig"): s3rver verifies the HMAC-SHA1 with the
 *     secret, else 403 SignatureDoesNotMatch -- but it builds the
 *     CanonicalizedResource from the decoded path, re-encoded its own way
 *     and without a trailing '/', where AWS uses the path as sent: it
 *     refuses correct signatures for bucket requests ("/bucket/?location",
 *     libs3's S3_test_bucket) and for keys with ! ' ( ) *.  So this file
 *     verifies V2 itself, as AWS documents it (unless --no-strict-auth):
 *     string to sign = VERB, Content-MD5, Content-Type, Date (empty when
 *     x-amz-date is sent), the x-amz-* headers, and the path as sent plus
 *     the sub-resources of the query; 15 minutes of clock skew at most
 *     (403 RequestTimeTooSkewed).  A request that passes goes on to s3rver
 *     without its Authorization header (s3rver lets anonymous requests do
 *     everything), one that fails gets 403 SignatureDoesNotMatch.
 *   - Signature V4: s3rver only requires x-amz-content-sha256 and checks
 *     the access key and the date (15 min skew); it does NOT verify the
 *     signature.  This file adds that check (unless --no-strict-auth): the
 *     canonical request, the scope and the HMAC-SHA256 signature with the
 *     account's secret (403 SignatureDoesNotMatch), and for PUT with a hex
 *     x-amz-content-sha256 the body's SHA-256 (400
 *     XAmzContentSHA256Mismatch).
 * With --no-strict-auth, s3rver's own checks alone apply.
 *
 * s3rver 3.7.1 answers a PUT when its pipe has taken the bytes, before the
 * file is written: a GET right after a PUT of 1 MiB can read a truncated
 * object.  This file replaces its store's putObject with one that answers
 * only once the file is on disk (fsynced), and replaces it atomically
 * (below).
 */
'use strict';

const crypto = require('crypto');
const S3rver = require('s3rver');
const AWSAccount = require('s3rver/lib/models/account');
const S3Error = require('s3rver/lib/models/error');
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const S3Object = require('s3rver/lib/models/object');
const { pick, pickBy } = require('lodash'); // s3rver's own dependency, pinned with it
const fs = require('fs');
const path = require('path');

function usage(msg) {
  process.stderr.write(`run-s3rver: ${msg}\n` +
    'usage: node run-s3rver.js --directory DIR [--port N] [--address A] ' +
    '[--bucket NAME]... [--no-strict-auth] [--verbose]\n');
  process.exit(1);
}

function parseArgs(argv) {
  const o = { address: '127.0.0.1', port: 0, buckets: [], strictAuth: true, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--directory': case '-d': o.directory = value(); break;
      case '--port': case '-p': o.port = Number(value()); break;
      case '--address': case '-a': o.address = value(); break;
      case '--bucket': o.buckets.push(value()); break;
      case '--no-strict-auth': o.strictAuth = false; break;
      case '--verbose': o.verbose = true; break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!o.directory) usage('--directory is required');
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) usage('bad --port');
  return o;
}

/* ---- s3rver's PUT race ------------------------------------------------ */

function readAll(stream) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    stream.on('data', c => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

// Same result and files as s3rver's own putObject (getResourcePath and
// putMetadata are its internals, pinned by package-lock.json), but the
// object file is complete, and on disk, before the PUT is answered; and it
// is replaced whole: written to a temporary name (which listObjects skips:
// it does not end in ._S3rver_object), fsynced, then renamed over the
// object.  s3rver's writeFile truncates the object first, so a GET at the
// same moment, or a SIGKILL of this server mid-write, would otherwise see
// a short or empty object that nobody ever stored.
let tmpSeq = 0;
async function replaceFile(target, content) {
  const tmp = `${target}.tmp-${process.pid}-${++tmpSeq}`;
  const fh = await fs.promises.open(tmp, 'w');
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.promises.rename(tmp, target);
  const dir = await fs.promises.open(path.dirname(target), 'r');
  try {
    await dir.sync(); // the rename is durable once the directory is
  } finally {
    await dir.close();
  }
}

// s3rver's putMetadata, with its two files (the MD5, the metadata JSON)
// replaced whole as well: a GET reads both, and JSON.parse of a metadata
// file caught between truncation and write made it answer 500
// InternalError to about one GET in fifteen racing a PUT.
FilesystemStore.prototype.putMetadata = async function putMetadata(bucket, key, metadata, md5) {
  const metadataPath = this.getResourcePath(bucket, key, 'metadata.json');
  const md5Path = this.getResourcePath(bucket, key, 'object.md5');
  const json = {
    ...pick(metadata, S3Object.ALLOWED_METADATA),
    ...pickBy(metadata, (value, name) => name.startsWith('x-amz-meta-')),
  };
  if (md5) await replaceFile(md5Path, md5);
  await replaceFile(metadataPath, JSON.stringify(json, null, 2));
};

FilesystemStore.prototype.putObject = async function putObject(object) {
  const content = Buffer.isBuffer(object.content) ? object.content : await readAll(object.content);
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
  await replaceFile(objectPath, content);
  const md5 = crypto.createHash('md5').update(content).digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size: content.length, md5 };
};

/* ---- Signature V4 check ------------------------------------------------ */

const sha256hex = data => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();

// S3's URI encoding: everything but the unreserved characters.
function uriEncode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g,
    c => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function canonicalPath(rawPath) {
  return rawPath.split('/').map(seg => uriEncode(decodeURIComponent(seg))).join('/');
}

function canonicalQuery(rawQuery) {
  if (!rawQuery) return '';
  return rawQuery.split('&').filter(Boolean).map(kv => {
    const eq = kv.indexOf('=');
    const k = decodeURIComponent((eq < 0 ? kv : kv.slice(0, eq)).replace(/\+/g, ' '));
    const v = eq < 0 ? '' : decodeURIComponent(kv.slice(eq + 1).replace(/\+/g, ' '));
    return [uriEncode(k), uriEncode(v)];
  }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`).join('&');
}

// Header values as sent (rawHeaders), duplicates joined with ",".
function headerValue(req, name) {
  const values = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2)
    if (req.rawHeaders[i].toLowerCase() === name)
      values.push(req.rawHeaders[i + 1].trim().replace(/\s+/g, ' '));
  return values.length ? values.join(',') : undefined;
}

function mismatch(detail) {
  return new S3Error('SignatureDoesNotMatch',
    'The request signature we calculated does not match the signature you ' +
    'provided. Check your key and signing method.', detail);
}

async function verifyV4(ctx, next) {
  const auth = ctx.get('Authorization');
  if (!/^AWS4-HMAC-SHA256 /i.test(auth)) return next();

  const parts = {};
  for (const p of auth.slice(auth.indexOf(' ') + 1).split(',')) {
    const eq = p.indexOf('=');
    if (eq > 0) parts[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
  }
  if (!parts.Credential || !parts.SignedHeaders || !parts.Signature)
    return next(); // s3rver answers AuthorizationHeaderMalformed
  const [accessKeyId, date, region, service, terminal] = parts.Credential.split('/');
  const account = AWSAccount.registry.get(accessKeyId);
  if (!account) return next(); // s3rver answers InvalidAccessKeyId
  const secret = account.accessKeys.get(accessKeyId);

  const amzDate = ctx.get('x-amz-date');
  const payloadHash = ctx.get('x-amz-content-sha256');
  if (!amzDate || !payloadHash) return next(); // s3rver refuses these
  if (terminal !== 'aws4_request' || service !== 's3' || amzDate.slice(0, 8) !== date)
    throw mismatch({ Credential: parts.Credential });

  const signed = parts.SignedHeaders.split(';');
  if (!signed.includes('host')) throw mismatch({ SignedHeaders: parts.SignedHeaders });
  let canonicalHeaders = '';
  for (const h of signed) {
    const v = headerValue(ctx.req, h);
    if (v === undefined) throw mismatch({ MissingSignedHeader: h });
    canonicalHeaders += `${h}:${v}\n`;
  }
  const url = ctx.req.url;
  const q = url.indexOf('?');
  let canonicalRequest;
  try {
    canonicalRequest = [
      ctx.method,
      canonicalPath(q < 0 ? url : url.slice(0, q)),
      canonicalQuery(q < 0 ? '' : url.slice(q + 1)),
      canonicalHeaders,
      parts.SignedHeaders,
      payloadHash,
    ].join('\n');
  } catch (e) { // a malformed %-escape
    throw mismatch({ URI: url });
  }
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac('AWS4' + secret, date), region), service), 'aws4_request');
  const expected = crypto.createHmac('sha256', key).update(stringToSign).digest('hex');
  if (expected !== parts.Signature.toLowerCase())
    throw mismatch({ AWSAccessKeyId: accessKeyId, StringToSign: stringToSign,
                     CanonicalRequest: canonicalRequest });

  // The payload: s3rver would store whatever came, so check it here and
  // hand s3rver the verified bytes.
  if (ctx.method === 'PUT' && /^[0-9a-f]{64}$/i.test(payloadHash)) {
    const body = await readAll(ctx.req);
    const actual = sha256hex(body);
    if (actual !== payloadHash.toLowerCase()) {
      const err = new S3Error('XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        { ClientComputedContentSHA256: payloadHash, S3ComputedContentSHA256: actual });
      err.status = 400; // as AWS answers; s3rver's table does not know the code
      err.expose = true;
      throw err;
    }
    ctx.req = body; // the store takes a Buffer (see putObject above)
  }
  return next();
}

/* ---- Signature V2 check ------------------------------------------------ */

// Query parameters that are part of the V2 CanonicalizedResource.
const V2_SUBRESOURCES = new Set([
  'acl', 'cors', 'delete', 'lifecycle', 'location', 'logging', 'notification',
  'partNumber', 'policy', 'requestPayment', 'restore', 'tagging', 'torrent',
  'uploadId', 'uploads', 'versionId', 'versioning', 'versions', 'website',
  'response-cache-control', 'response-content-disposition', 'response-content-encoding',
  'response-content-language', 'response-content-type', 'response-expires',
]);

function checkSkew(dateText) {
  const t = new Date(dateText);
  if (isNaN(t))
    throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
  if (Math.abs(Date.now() - t) > 15 * 60 * 1000)
    throw new S3Error('RequestTimeTooSkewed',
      'The difference between the request time and the current time is too large.');
}

function verifyV2(ctx) {
  const auth = ctx.get('Authorization');
  const m = /^AWS ([^:\s]+):(\S+)$/.exec(auth);
  if (!m) return; // s3rver answers InvalidArgument
  const account = AWSAccount.registry.get(m[1]);
  if (!account) return; // s3rver answers InvalidAccessKeyId
  const secret = account.accessKeys.get(m[1]);

  const amz = new Map();
  for (let i = 0; i < ctx.req.rawHeaders.length; i += 2) {
    const name = ctx.req.rawHeaders[i].toLowerCase();
    if (!name.startsWith('x-amz-')) continue;
    const v = ctx.req.rawHeaders[i + 1].trim().replace(/\s+/g, ' ');
    amz.set(name, amz.has(name) ? `${amz.get(name)},${v}` : v);
  }
  const hasAmzDate = amz.has('x-amz-date');
  checkSkew(hasAmzDate ? amz.get('x-amz-date') : ctx.get('Date'));

  const url = ctx.req.url;
  const q = url.indexOf('?');
  let resource = q < 0 ? url : url.slice(0, q);
  if (q >= 0) {
    const subs = url.slice(q + 1).split('&').filter(kv => V2_SUBRESOURCES.has(kv.split('=')[0]));
    subs.sort((a, b) => (a.split('=')[0] < b.split('=')[0] ? -1 : 1));
    if (subs.length) resource += '?' + subs.join('&');
  }
  const stringToSign = [
    ctx.method,
    ctx.get('Content-MD5'),
    ctx.get('Content-Type'),
    hasAmzDate ? '' : ctx.get('Date'),
    ...[...amz.keys()].sort().map(k => `${k}:${amz.get(k)}`),
    resource,
  ].join('\n');
  const expected = crypto.createHmac('sha1', secret).update(stringToSign, 'utf8').digest('base64');
  if (expected !== m[2])
    throw mismatch({ AWSAccessKeyId: m[1], StringToSign: stringToSign });
  // Verified: s3rver would check it again, its own (different) way.
  delete ctx.req.headers.authorization;
}

async function verifyAuth(ctx, next) {
  if (/^AWS /.test(ctx.get('Authorization'))) {
    verifyV2(ctx);
    return next();
  }
  return verifyV4(ctx, next);
}

/* ---- main -------------------------------------------------------------- */

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const server = new S3rver({
    address: o.address,
    port: o.port,
    directory: o.directory,
    silent: !o.verbose,
    resetOnClose: false,
    vhostBuckets: false,
    configureBuckets: o.buckets.map(name => ({ name })),
  });
  if (o.strictAuth)
    server.middleware.splice(1, 0, verifyAuth); // after s3rver's logger, before the rest

  const { address, port } = await server.run();
  process.stdout.write(`ready ${address}:${port}\n`);

  const stop = () => {
    setTimeout(() => process.exit(0), 2000).unref(); // a client that keeps its connection
    server.close().then(() => process.exit(0), () => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch(err => {
  process.stderr.write(`run-s3rver: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
