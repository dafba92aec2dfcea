import { Readable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import type { HttpRequest } from '@smithy/types';

/** One request as it would go over the wire: what S3 itself would read. */
export interface SentRequest {
  operation: string;
  headers: Record<string, string>;
  /** The XML of a request, `<N bytes>` for a buffered body, `<stream>` for a streamed one. */
  body: string;
  /** A copy of a buffered body's bytes (the sender may reuse its buffer). */
  bytes?: Buffer;
  query: Record<string, unknown>;
}

function operationOf(request: HttpRequest): string {
  const query = request.query ?? {};
  if (request.method === 'POST' && 'uploads' in query) return 'CreateMultipartUpload';
  if (request.method === 'PUT' && 'partNumber' in query) return 'UploadPart';
  if (request.method === 'POST' && 'uploadId' in query) return 'CompleteMultipartUpload';
  if (request.method === 'DELETE' && 'uploadId' in query) return 'AbortMultipartUpload';
  if (request.method === 'GET' && 'uploadId' in query) return 'ListParts';
  if (request.method === 'PUT') return 'PutObject';
  return `${request.method} ${request.path}`;
}

function bodyText(body: unknown): string {
  if (body === undefined || body === null) return '';
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return `<${body.length} bytes>`;
  return '<stream>';
}

/**
 * A real S3 client (real serializers, checksum middleware and signing) whose transport records each
 * request and answers as S3 would, so a test sees the headers and XML that S3 would receive.
 * `listParts` gives the parts `ListParts` answers with (one page).
 */
export function recordingS3(
  options: {
    requestChecksumCalculation?: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
    listParts?: () => { PartNumber: number; ETag: string; Size: number; ChecksumCRC64NVME?: string }[];
  } = {},
) {
  const sent: SentRequest[] = [];
  const answer = (statusCode: number, headers: Record<string, string>, xml = '') => ({
    response: { statusCode, headers, body: Readable.from([Buffer.from(xml)]) },
  });
  const s3 = new S3Client({
    region: 'us-east-1',
    endpoint: 'http://s3.test',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    requestChecksumCalculation: options.requestChecksumCalculation ?? 'WHEN_REQUIRED',
    requestHandler: {
      handle: async (request: HttpRequest) => {
        const operation = operationOf(request);
        sent.push({
          operation,
          headers: { ...request.headers },
          body: bodyText(request.body),
          ...(request.body instanceof Uint8Array ? { bytes: Buffer.from(request.body) } : {}),
          query: { ...request.query },
        });
        switch (operation) {
          case 'CreateMultipartUpload':
            return answer(
              200,
              {},
              '<InitiateMultipartUploadResult><Bucket>downloads</Bucket><Key>k</Key><UploadId>upload-1</UploadId></InitiateMultipartUploadResult>',
            );
          case 'UploadPart':
            return answer(200, { etag: `"part-${request.query?.partNumber}"` });
          case 'ListParts':
            return answer(
              200,
              {},
              `<ListPartsResult><IsTruncated>false</IsTruncated>${(options.listParts?.() ?? [])
                .map(
                  (part) =>
                    `<Part><PartNumber>${part.PartNumber}</PartNumber><ETag>${part.ETag}</ETag>` +
                    (part.ChecksumCRC64NVME
                      ? `<ChecksumCRC64NVME>${part.ChecksumCRC64NVME}</ChecksumCRC64NVME>`
                      : '') +
                    `<Size>${part.Size}</Size></Part>`,
                )
                .join('')}</ListPartsResult>`,
            );
          case 'CompleteMultipartUpload':
            return answer(
              200,
              {},
              '<CompleteMultipartUploadResult><Bucket>downloads</Bucket><Key>k</Key><ETag>"e-3"</ETag></CompleteMultipartUploadResult>',
            );
          case 'AbortMultipartUpload':
            return answer(204, {});
          default:
            return answer(200, { etag: '"object"' });
        }
      },
    },
  });
  const of = (operation: string) => sent.filter((request) => request.operation === operation);
  return { s3, sent, of };
}
