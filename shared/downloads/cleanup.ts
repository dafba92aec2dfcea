import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { toObjectPrefix } from './object-key.ts';

/**
 * Removes whatever a failed download left in S3: open multipart uploads (their parts cost money
 * and are invisible in listings) and any object under the download's prefix.
 */
export async function removeDownloadLeftovers(
  s3: S3Client,
  bucket: string,
  downloadId: string,
): Promise<{ abortedUploads: number; deletedObjects: number }> {
  const prefix = toObjectPrefix(downloadId);
  let abortedUploads = 0;
  let deletedObjects = 0;
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  for (const upload of uploads.Uploads ?? []) {
    if (!upload.Key || !upload.UploadId) continue;
    await s3.send(
      new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }),
    );
    abortedUploads++;
  }
  const objects = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  for (const object of objects.Contents ?? []) {
    if (!object.Key) continue;
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: object.Key }));
    deletedObjects++;
  }
  return { abortedUploads, deletedObjects };
}
