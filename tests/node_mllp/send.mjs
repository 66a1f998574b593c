#!/usr/bin/env node
// Test-only HL7v2 MLLP client: sends ER7 files with @medplum/hl7's Hl7Client, a client we did
// not write, so the Python tests can check our listener against a third-party implementation.
//
// Install (needs the npm registry once; the script itself runs offline after that):
//     npm ci --prefix tests/node_mllp
// Versions are pinned in package.json / package-lock.json: @medplum/hl7 5.0.10 and
// @medplum/core 5.0.10 declare engines node "^22.18.0 || >=24.2.0", so on node 20 npm prints
// EBADENGINE warnings (warnings only, npm ci still succeeds) and the code paths used here run
// fine on node 20. Earlier versions (4.5.2) accept node 20, but their ACK reader only ends a
// frame when a TCP chunk itself ends with FS CR, and 5.0.10 fixes that (see below).
//
// Usage:
//     node send.mjs --host 127.0.0.1 --port 2575 [--encoding utf-8|latin1|<iconv-lite name>]
//                   [--file-encoding NAME] [--timeout-ms 10000] FILE...
//
// Each FILE holds exactly one HL7v2 message in ER7. The file's bytes are decoded with
// --file-encoding (default: the same as --encoding, so a Latin-1 file sent with
// --encoding latin1 goes on the wire byte for byte). Segment separators (\r, \n, \r\n, and
// runs of them: blank lines are dropped) become \r; a leading UTF-8 BOM is dropped. A single
// trailing \r is sent when the file ends with a line break, none when it does not.
//
// All files go, in order, over one Hl7Client (one TCP connection as long as the server keeps it
// open; Hl7Client reconnects by itself on the next send if the peer closed it). For each file
// one JSON line is printed on stdout:
//     {"file": F, "connection": N, "ack": "<ACK, \r between segments>", "msa1": "AA", "msa2": "<id>"}
//     {"file": F, "connection": N|null, "error": "<why>"}
// "connection" counts TCP connections opened by the client (1 for the first), so a test can tell
// whether the server kept the connection alive. Diagnostics go to stderr.
// Exit status: 0 when every message got an ACK (whatever its MSA-1), 1 otherwise, 2 on bad usage.
//
// What Hl7Client does, read from @medplum/hl7 5.0.10 dist (src/client.ts, src/connection.ts):
// - new Hl7Client({host, port, encoding, keepAlive, connectTimeout}). `encoding` is an
//   iconv-lite name (default 'utf-8'); it is used both to encode the outgoing message
//   (iconv.encode(msg.toString())) and to decode every received frame, so 'latin1' means
//   ISO-8859-1 both ways. `keepAlive` is only TCP SO_KEEPALIVE; the connection is reused across
//   sendAndWait() calls regardless. `connectTimeout` (default 30 s) bounds connecting only.
// - Framing out: VT + bytes + FS CR, one socket.write per message. In: bytes before a VT are
//   skipped, a frame ends at the first FS CR (several frames per chunk and FS/CR split across
//   chunks are handled in 5.x; 4.x only closed a frame when a data chunk ended with FS CR).
// - Hl7Message.parse (from @medplum/core) requires the text to start with "MSH", splits
//   segments on /[\r\n]+/ and fields/components with plain split(); toString() joins with \r,
//   so the message is re-serialised unchanged apart from segment separators.
// - ACK matching: sendAndWait needs MSH-10 and resolves with the first received message whose
//   MSA-2 equals MSH-10 exactly (string compare). An ACK with an unknown MSA-2 (or none) is
//   dropped with an 'error' event, so a server that echoes a wrong control id looks like a
//   timeout. Two messages in flight with the same MSH-10 would clobber each other (we send one
//   at a time, so it does not matter here). The default returnAck in 5.x is APPLICATION
//   (skips a CA commit ACK and waits for the next one); 4.x defaulted to FIRST. We pass
//   returnAck FIRST explicitly: the first matching ACK, whatever its code, is the result.
//   After a timeout the connection is kept: the next file goes on the same socket, and a late
//   ACK for the timed-out message is dropped as "unknown message control ID".
// - "ack" below is the ACK as Hl7Message.parse + toString() give it back: the received text with
//   its segment separators (\r, \n, runs of them) folded to one \r; a trailing \r is kept.
// - Checked on the wire (loopback echo server): PID-5 "Müller^Hélène" goes out as
//   4d c3 bc 6c 6c 65 72 5e 48 c3 a9 6c c3 a8 6e 65 with utf-8 and as
//   4d fc 6c 6c 65 72 5e 48 e9 6c e8 6e 65 with latin1; a Latin-1 ACK decodes correctly.
// - Timeouts: sendAndWait has none unless timeoutMs is given. Its timer is not cleared when the
//   ACK arrives, so it keeps node's event loop alive until it fires: we call process.exit().
// - If the peer closes the socket while an ACK is pending, Hl7Client does not reject the
//   pending promise (only a local close() does), so it would wait for the full timeout; this
//   script watches the client's 'close' event and reports the message as failed at once.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Hl7Message } from '@medplum/core';
import { Hl7Client, ReturnAckCategory } from '@medplum/hl7';
import iconv from 'iconv-lite';

function usage(message) {
  process.stderr.write(
    `${message}\nusage: node send.mjs --host HOST --port PORT [--encoding utf-8|latin1] ` +
      `[--file-encoding NAME] [--timeout-ms 10000] FILE...\n`
  );
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
        encoding: { type: 'string', default: 'utf-8' },
        'file-encoding': { type: 'string' },
        'timeout-ms': { type: 'string', default: '10000' },
      },
    });
  } catch (err) {
    usage(err.message);
  }
  const { values, positionals } = parsed;
  const port = Number(values.port);
  if (!values.port || !Number.isInteger(port) || port < 1 || port > 65535) {
    usage('--port must be an integer in 1..65535');
  }
  const timeoutMs = Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    usage('--timeout-ms must be a positive integer');
  }
  const encoding = values.encoding;
  const fileEncoding = values['file-encoding'] ?? encoding;
  for (const name of [encoding, fileEncoding]) {
    if (!iconv.encodingExists(name)) {
      usage(`unknown encoding: ${name}`);
    }
  }
  if (positionals.length === 0) {
    usage('no FILE given');
  }
  return { host: values.host, port, encoding, fileEncoding, timeoutMs, files: positionals };
}

function loadMessage(file, fileEncoding) {
  let text = iconv.decode(readFileSync(file), fileEncoding);
  if (text.startsWith('\uFEFF')) {
    text = text.slice(1);
  }
  text = text.replace(/[\r\n]+/g, '\r');
  return Hl7Message.parse(text); // throws "Invalid HL7 message" unless it starts with MSH
}

function errorText(err) {
  // OperationOutcomeError (timeouts, missing MSH-10) carries its detail in the outcome.
  const issue = err?.outcome?.issue?.[0];
  if (issue) {
    return [issue.details?.text, issue.diagnostics].filter(Boolean).join(': ');
  }
  return err?.message ?? String(err);
}

async function main() {
  const opts = parseCli();
  const client = new Hl7Client({
    host: opts.host,
    port: opts.port,
    encoding: opts.encoding,
    connectTimeout: opts.timeoutMs,
  });

  // Count the TCP connections the client opens, and fail fast when the peer closes.
  let connectionCount = 0;
  let lastConnection;
  let onPeerClose = () => {};
  let closing = false;
  client.addEventListener('close', () => {
    if (!closing) {
      process.stderr.write('send.mjs: connection closed by peer\n');
      onPeerClose();
    }
  });
  client.addEventListener('error', (event) => {
    process.stderr.write(`send.mjs: client error: ${errorText(event.error)}\n`);
  });

  let failures = 0;
  for (const file of opts.files) {
    const line = { file };
    try {
      const message = loadMessage(file, opts.fileEncoding);
      const connection = await client.connect();
      if (connection !== lastConnection) {
        lastConnection = connection;
        connectionCount += 1;
      }
      line.connection = connectionCount;
      const peerClosed = new Promise((_, reject) => {
        onPeerClose = () => reject(new Error('connection closed by peer before an ACK arrived'));
      });
      const sending = client.sendAndWait(message, {
        timeoutMs: opts.timeoutMs,
        returnAck: ReturnAckCategory.FIRST,
      });
      sending.catch(() => {}); // it may still reject (timer, close()) after peerClosed won the race
      const ack = await Promise.race([sending, peerClosed]);
      const msa = ack.getSegment('MSA');
      line.ack = ack.toString();
      line.msa1 = msa?.getField(1)?.toString() ?? '';
      line.msa2 = msa?.getField(2)?.toString() ?? '';
    } catch (err) {
      failures += 1;
      line.connection ??= null;
      line.error = errorText(err);
    } finally {
      onPeerClose = () => {};
    }
    process.stdout.write(JSON.stringify(line) + '\n');
  }

  closing = true;
  await client.close();
  return failures === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`send.mjs: ${err?.stack ?? err}\n`);
    process.exit(1);
  }
);
