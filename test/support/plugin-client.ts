/** A keep-alive HTTP client for a volume plugin's Unix socket, as dockerd talks to it. */
import http from 'node:http';

export interface RawAnswer {
  status: number;
  text: string;
}

export class PluginClient {
  private readonly agent: http.Agent;

  constructor(
    private readonly socket: string,
    maxSockets = 64,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  /** POSTs `payload` (JSON text) to `endpoint`; the answer's body is left unparsed. */
  request(endpoint: string, payload: string): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socket,
          path: endpoint,
          method: 'POST',
          agent: this.agent,
          headers: {
            'Content-Type': 'application/vnd.docker.plugins.v1.2+json',
            'Content-Length': Buffer.byteLength(payload),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
