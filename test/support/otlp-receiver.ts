// An in-process OTLP/HTTP receiver (a collector stand-in) for the telemetry tests: POST /v1/traces and
// /v1/metrics, protobuf (`application/x-protobuf`) or JSON (`application/json`), decoded into one plain
// shape. The protobuf messages are the parts of opentelemetry-proto (common/v1, resource/v1, trace/v1,
// metrics/v1, collector/*/v1) the broker sends, with their field numbers, parsed by protobufjs.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';

const OTLP_PROTO = `
syntax = "proto3";
package otlp;
message AnyValue {
  oneof value {
    string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
    ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; }
message Resource { repeated KeyValue attributes = 1; }

message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; repeated Event events = 11; Status status = 15;
  message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
}
message Status { string message = 2; int32 code = 3; }

message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; }
message ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2; }
message Metric {
  string name = 1; string description = 2; string unit = 3;
  oneof data { Gauge gauge = 5; Sum sum = 7; Histogram histogram = 9; }
}
message Gauge { repeated NumberDataPoint data_points = 1; }
message Sum { repeated NumberDataPoint data_points = 1; int32 aggregation_temporality = 2; bool is_monotonic = 3; }
message Histogram { repeated HistogramDataPoint data_points = 1; int32 aggregation_temporality = 2; }
message NumberDataPoint {
  repeated KeyValue attributes = 7; fixed64 start_time_unix_nano = 2; fixed64 time_unix_nano = 3;
  oneof value { double as_double = 4; sfixed64 as_int = 6; }
}
message HistogramDataPoint {
  repeated KeyValue attributes = 9; fixed64 start_time_unix_nano = 2; fixed64 time_unix_nano = 3;
  fixed64 count = 4; optional double sum = 5; repeated fixed64 bucket_counts = 6;
  repeated double explicit_bounds = 7; optional double min = 11; optional double max = 12;
}
`;

const root = protobuf.parse(OTLP_PROTO).root;
const TraceRequest = root.lookupType('otlp.ExportTraceServiceRequest');
const MetricsRequest = root.lookupType('otlp.ExportMetricsServiceRequest');

export type Attrs = Record<string, string | number | boolean>;

export interface ReceivedSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  attributes: Attrs;
  events: { name: string; attributes: Attrs }[];
  status: { code: number; message: string };
  resource: Attrs;
}

export interface ReceivedPoint {
  attributes: Attrs;
  /** Sum and gauge points. */
  value?: number;
  /** Histogram points. */
  count?: number;
  sum?: number;
}

export interface ReceivedMetric {
  name: string;
  unit: string;
  kind: 'sum' | 'gauge' | 'histogram';
  monotonic?: boolean;
  points: ReceivedPoint[];
  resource: Attrs;
}

export interface OtlpReceiver {
  url: string;
  spans: ReceivedSpan[];
  /** Every metric export in arrival order (cumulative: the last one of a name holds the totals). */
  metrics: ReceivedMetric[];
  /** Each request body as it arrived (bytes as latin1 for protobuf), for the secret scans. */
  raw: string[];
  /** Content types seen, e.g. to tell the protocols apart. */
  contentTypes: Set<string>;
  /** The last export of a metric by name. */
  lastMetric(name: string): ReceivedMetric | undefined;
  close(): Promise<void>;
}

// JSON-shaped values after protobufjs's toObject (camelCase, longs as numbers, bytes as Buffers) or
// OTLP/JSON (camelCase, ids as hex, 64-bit integers as strings): one reader for both.
type Json = Record<string, unknown>;
const list = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);
const hex = (v: unknown): string =>
  v instanceof Uint8Array ? Buffer.from(v).toString('hex') : typeof v === 'string' ? v : '';

function anyValue(v: Json | undefined): string | number | boolean {
  if (!v) return '';
  if ('stringValue' in v) return v.stringValue as string;
  if ('boolValue' in v) return v.boolValue as boolean;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  return JSON.stringify(v);
}

function attrs(kvs: unknown): Attrs {
  const out: Attrs = {};
  for (const kv of list(kvs)) out[kv.key as string] = anyValue(kv.value as Json | undefined);
  return out;
}

function point(p: Json): ReceivedPoint {
  const value = p.asDouble ?? p.asInt;
  return {
    attributes: attrs(p.attributes),
    ...(value !== undefined ? { value: Number(value) } : {}),
    ...(p.count !== undefined ? { count: Number(p.count), sum: Number(p.sum) } : {}),
  };
}

function collect(receiver: OtlpReceiver, signal: string, body: Json): void {
  if (signal === 'traces') {
    for (const rs of list(body.resourceSpans)) {
      const resource = attrs((rs.resource as Json | undefined)?.attributes);
      for (const ss of list(rs.scopeSpans)) {
        for (const s of list(ss.spans)) {
          const status = (s.status as Json | undefined) ?? {};
          receiver.spans.push({
            name: s.name as string,
            kind: Number(s.kind ?? 0),
            traceId: hex(s.traceId),
            spanId: hex(s.spanId),
            parentSpanId: hex(s.parentSpanId),
            attributes: attrs(s.attributes),
            events: list(s.events).map((e) => ({ name: e.name as string, attributes: attrs(e.attributes) })),
            status: { code: Number(status.code ?? 0), message: (status.message as string) ?? '' },
            resource,
          });
        }
      }
    }
    return;
  }
  for (const rm of list(body.resourceMetrics)) {
    const resource = attrs((rm.resource as Json | undefined)?.attributes);
    for (const sm of list(rm.scopeMetrics)) {
      for (const m of list(sm.metrics)) {
        const kind = m.sum ? 'sum' : m.gauge ? 'gauge' : 'histogram';
        const data = (m.sum ?? m.gauge ?? m.histogram) as Json;
        receiver.metrics.push({
          name: m.name as string,
          unit: (m.unit as string) ?? '',
          kind,
          ...(m.sum ? { monotonic: Boolean((m.sum as Json).isMonotonic) } : {}),
          points: list(data?.dataPoints).map(point),
          resource,
        });
      }
    }
  }
}

/** Starts the receiver on 127.0.0.1; `hang: true` accepts requests and never answers (a stuck collector). */
export async function startOtlpReceiver(options: { hang?: boolean } = {}): Promise<OtlpReceiver> {
  const pending = new Set<ServerResponse>();
  const receiver: OtlpReceiver = {
    url: '',
    spans: [],
    metrics: [],
    raw: [],
    contentTypes: new Set(),
    lastMetric: (name) => receiver.metrics.findLast((m) => m.name === name),
    close: async () => {
      for (const res of pending) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (options.hang) {
        pending.add(res);
        return;
      }
      const signal = req.url === '/v1/traces' ? 'traces' : req.url === '/v1/metrics' ? 'metrics' : '';
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      const bytes = Buffer.concat(chunks);
      if (req.method !== 'POST' || !signal) {
        res.writeHead(404).end();
        return;
      }
      receiver.contentTypes.add(type);
      try {
        if (type === 'application/json') {
          receiver.raw.push(bytes.toString('utf8'));
          collect(receiver, signal, JSON.parse(bytes.toString('utf8')) as Json);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        } else {
          receiver.raw.push(bytes.toString('latin1'));
          const type = signal === 'traces' ? TraceRequest : MetricsRequest;
          const body = type.toObject(type.decode(bytes), { longs: Number, defaults: false }) as Json;
          collect(receiver, signal, body);
          res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        }
      } catch (err) {
        res.writeHead(400).end(String(err));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}
