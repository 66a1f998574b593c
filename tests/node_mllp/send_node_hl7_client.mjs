#!/usr/bin/env node
// Test-only HL7v2 MLLP sender built on node-hl7-client (npm, MIT, zero dependencies), a second
// client we did not write, with its own framing and its own batch support.
//
// Install with the other test clients (offline afterwards): npm ci --prefix tests/node_mllp.
// node-hl7-client 4.0.0 declares engines node ">=22"; on node 20 npm prints an EBADENGINE
// warning (npm ci still succeeds) and every code path used here runs on node 20.
//
// Usage:
//     node send_node_hl7_client.mjs --port 2575 [--host 127.0.0.1] [--encoding utf8|latin1]
//                                   [--timeout-ms 10000] [--tls-ca PEM [--tls-cert PEM
//                                   --tls-key PEM]] FILE...
//
// Each FILE holds one ER7 message, or a batch (first segment BHS) or a file batch (FHS); its
// bytes are decoded with --encoding, line ends (\r, \n, \r\n) become \r, and the client sends
// it as a Message, Batch or FileBatch over one Connection (one TCP connection while the server
// keeps it open). --encoding is a Node.js Buffer encoding, used by the client to encode what
// it sends; 'latin1' sends each byte of the file unchanged (so an ISO 8859-15 file goes out as
// is). For each FILE one JSON line on stdout:
//     {"file": F, "connection": N, "acks": ["<ACK text, \r between segments>", ...],
//      "raw": ["<reply text as the client read it>", ...]}
//     {"file": F, "connection": N|null, "error": "<why>", "raw": [...]}
// "acks" holds every ACK message the client handed to its response handler until the first
// one came plus a short settling time (a batch answer is split by the client into one call
// per message); "raw" every reply the client read meanwhile ('data.raw' event, emitted
// before it parses the reply: a reply it cannot parse is there and not in "acks"). With --tls-ca the connection is TLS, the server's certificate checked
// against that CA (rejectUnauthorized); --tls-cert and --tls-key present a client certificate.
// Exit status: 0 when every FILE got an ACK, 1 otherwise, 2 on bad usage.
//
// What node-hl7-client does, read from its 4.0.0 lib/esm/index.mjs:
// - Connection.sendMessage(m) checks that every MSH-12 equals the Client's `version`, then
//   writes VT + Buffer.from(m.toString(), encoding) + FS CR in one socket write.
// - The reply reader (MLLPCodec) appends each data chunk to a buffer and, as soon as the buffer
//   holds an FS byte and a CR byte anywhere, decodes the whole buffer as UTF-8 (whatever the
//   connection's encoding), drops VT and FS, trims each line and joins lines with \r. Text with
//   several MSH is read as a Batch and the handler is called once per message in it.
// - The handler is called with an InboundResponse whose getMessage() is the parsed reply.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import Client, { Batch, FileBatch, Message } from 'node-hl7-client';

const SETTLE_MS = 150;

function usage(message) {
  process.stderr.write(`${message}\nusage: node send_node_hl7_client.mjs --port PORT ` +
    `[--host HOST] [--encoding utf8|latin1] [--timeout-ms N] [--expect-acks N] [--tls-ca PEM ` +
    `[--tls-cert PEM --tls-key PEM]] FILE...\n`);
  process.exit(2);
}

function parseCli() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string' },
        encoding: { type: 'string', default: 'utf8' },
        'timeout-ms': { type: 'string', default: '10000' },
        'expect-acks': { type: 'string', default: '1' },
        'tls-ca': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
      },
    });
  } catch (err) {
    usage(err.message);
  }
  const { values, positionals } = parsed;
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) usage('--port: 1..65535');
  if (!Buffer.isEncoding(values.encoding)) usage(`unknown encoding: ${values.encoding}`);
  const timeoutMs = Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) usage('--timeout-ms: a positive integer');
  const expectAcks = Number(values['expect-acks']);
  if (!Number.isInteger(expectAcks) || expectAcks < 1) usage('--expect-acks: a positive integer');
  if (positionals.length === 0) usage('no FILE given');
  if ((values['tls-cert'] || values['tls-key']) && !values['tls-ca']) usage('TLS needs --tls-ca');
  let tls;
  if (values['tls-ca']) {
    tls = { ca: readFileSync(values['tls-ca']), rejectUnauthorized: true };
    if (values['tls-cert']) tls.cert = readFileSync(values['tls-cert']);
    if (values['tls-key']) tls.key = readFileSync(values['tls-key']);
  }
  return { host: values.host, port, encoding: values.encoding, timeoutMs, expectAcks, tls,
    files: positionals };
}

function load(file, encoding) {
  const text = readFileSync(file).toString(encoding).replace(/^\uFEFF/, '')
    .replace(/\r\n|\n/g, '\r');
  if (text.startsWith('FHS')) return new FileBatch({ text });
  if (text.startsWith('BHS')) return new Batch({ text });
  return new Message({ text });
}

function versionOf(item) {
  const first = item instanceof Message ? item : item.messages()[0];
  return first.get('MSH.12').toString();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const opts = parseCli();
  const items = opts.files.map((file) => {
    try {
      return { file, item: load(file, opts.encoding) };
    } catch (err) {
      return { file, error: `cannot read as HL7: ${err.message}` };
    }
  });
  const first = items.find((i) => i.item);
  const version = first ? versionOf(first.item) : '2.5';
  const client = new Client({ host: opts.host, version, ...(opts.tls ? { tls: opts.tls } : {}) });
  const received = [];
  const raws = [];
  let wake = () => {};
  const connection = client.createConnection(
    { port: opts.port, encoding: opts.encoding, waitAck: true, maxConnectionAttempts: 1 },
    async (response) => {
      received.push(response.getMessage().toString());
      wake();
    });
  // TCP connections, told apart by their local port (the 'connect' event fires more than once
  // per connection in 4.0.0)
  const ports = [];
  const connections = () => {
    const port = connection._socket?.localPort;
    if (port !== undefined && !ports.includes(port)) ports.push(port);
    return ports.length || null;
  };
  connection.on('data.raw', (text) => raws.push(text));
  for (const event of ['client.error', 'data.error', 'connection.error']) {
    connection.on(event, (err) => process.stderr.write(`${event}: ${err?.message ?? err}\n`));
  }

  // Sent before the socket is connected, a message is queued and sendMessage opens a second
  // socket for it (4.0.0), leaving the first one open: wait for the first connection.
  const connected = new Promise((resolve) => connection.once('connect', resolve));
  await Promise.race([connected, sleep(opts.timeoutMs)]);

  let failures = 0;
  for (const { file, item, error } of items) {
    const line = { file, connection: null };
    try {
      if (error) throw new Error(error);
      received.length = 0;
      raws.length = 0;
      // Wait for the ACKs the caller expects (a commit ACK then an application ACK are two),
      // each bounded by the timeout, then a short settle for any further one.
      const deadline = Date.now() + opts.timeoutMs;
      let got = new Promise((resolve) => { wake = resolve; });
      await connection.sendMessage(item);
      while (received.length < opts.expectAcks) {
        const left = deadline - Date.now();
        const timer = sleep(Math.max(left, 0)).then(() => 'timeout');
        if (await Promise.race([got, timer]) === 'timeout') {
          if (received.length === 0) throw new Error('no ACK in time');
          break;
        }
        got = new Promise((resolve) => { wake = resolve; });
      }
      await sleep(SETTLE_MS);
      line.connection = connections();
      line.acks = [...received];
      line.raw = [...raws];
    } catch (err) {
      failures += 1;
      line.connection = connections();
      line.error = err?.message ?? String(err);
      line.raw = [...raws];
    }
    process.stdout.write(JSON.stringify(line) + '\n');
  }
  await connection.close();
  return failures === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`send_node_hl7_client.mjs: ${err?.stack ?? err}\n`);
  process.exit(1);
});
