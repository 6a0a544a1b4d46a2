/**
 * Run inside the journey's container by the container's own node (copied there as
 * probe.mjs): sends one raw request line to the daemon, which the CLI cannot do (an
 * oversized line, a request whose reply must be awaited while the service stops).
 *
 *   node probe.mjs SOCKET REQUEST_JSON [PADDING_BYTES]
 *
 * PADDING_BYTES adds a `padding` string of that length to the params. Prints `sent` once
 * the line is written, then the reply (the first line with an id); exit status 1 if none
 * came.
 */
import { createConnection } from 'node:net';

const [socketPath, requestText, padding] = process.argv.slice(2);
if (socketPath === undefined || requestText === undefined) {
  process.stderr.write('usage: node probe.mjs SOCKET REQUEST_JSON [PADDING_BYTES]\n');
  process.exit(2);
}
const request = JSON.parse(requestText) as { params?: Record<string, unknown> };
if (padding !== undefined) request.params = { ...request.params, padding: 'x'.repeat(Number(padding)) };

let received = '';
let answered = false;
const socket = createConnection(socketPath);
socket.setEncoding('utf8');
socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`, () => process.stdout.write('sent\n')));
socket.on('data', (chunk: string) => {
  received += chunk;
  for (let end = received.indexOf('\n'); end >= 0 && !answered; end = received.indexOf('\n')) {
    const line = received.slice(0, end + 1);
    received = received.slice(end + 1);
    // Notifications (Payload.attached, to every client) carry no id: the reply is the line that has one.
    if (!Object.hasOwn(JSON.parse(line) as object, 'id')) continue;
    answered = true;
    process.stdout.write(line);
    socket.destroy();
  }
});
socket.on('error', (err: NodeJS.ErrnoException) => {
  process.stderr.write(`probe: ${String(err.code ?? err.message)}\n`);
});
socket.on('close', () => {
  if (!answered) {
    process.stderr.write('probe: the connection closed without a reply\n');
    process.exitCode = 1;
  }
});
