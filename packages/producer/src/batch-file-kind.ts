/**
 * Why a batch file cannot be read as CSV or JSONL, said before reading it: a spreadsheet saved in
 * its own format (or a JSON array, or a compressed file) would otherwise be parsed as text and
 * answer "0 rows read" or a row of mojibake. Judged by the name, then by the first bytes, so a
 * workbook renamed to `.csv` is caught too.
 */
import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import type { BatchFormat } from './batch-file.js';

const SAVE_AS_CSV = 'save the sheet as CSV (UTF-8), or give JSONL (one JSON object per line)';

const BY_EXTENSION: Record<string, string> = {
  '.xlsx': `an Excel workbook (.xlsx) is not read; ${SAVE_AS_CSV}`,
  '.xlsm': `an Excel workbook (.xlsm) is not read; ${SAVE_AS_CSV}`,
  '.xls': `an Excel workbook (.xls) is not read; ${SAVE_AS_CSV}`,
  '.ods': `an OpenDocument spreadsheet (.ods) is not read; ${SAVE_AS_CSV}`,
  '.numbers': `a Numbers spreadsheet (.numbers) is not read; ${SAVE_AS_CSV}`,
  '.json': "a JSON file (.json) is not read; give JSONL, one object per line (jq -c '.[]' items.json > items.jsonl), or POST the array to /v1/batches",
  '.parquet': 'a Parquet file is not read; export it as CSV or JSONL',
  '.gz': 'a compressed file is not read; decompress it first',
  '.zip': 'a ZIP archive is not read; extract the CSV or JSONL file first',
};

const SNIFF_BYTES = 8 * 1024;

/** Undefined when the file may be read as `format`; otherwise what it is and what to do. */
export async function unreadableBatchFileKind(path: string, format: BatchFormat): Promise<string | undefined> {
  const byName = BY_EXTENSION[extname(path).toLowerCase()];
  if (byName) return byName;
  const head = Buffer.alloc(SNIFF_BYTES);
  const file = await open(path, 'r');
  let length: number;
  try {
    ({ bytesRead: length } = await file.read(head, 0, SNIFF_BYTES, 0));
  } finally {
    await file.close();
  }
  const bytes = head.subarray(0, length);
  const kind = format === 'csv' ? 'CSV' : 'JSONL';
  if (bytes.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04]))) return `not a ${kind} file: it is a ZIP archive (an .xlsx or .ods workbook?); ${SAVE_AS_CSV}`;
  if (bytes.subarray(0, 4).equals(Buffer.from([0xd0, 0xcf, 0x11, 0xe0]))) return `not a ${kind} file: it is an old Office document (an .xls workbook?); ${SAVE_AS_CSV}`;
  if (bytes.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))) return `not a ${kind} file: it is gzip-compressed; decompress it first`;
  if (bytes.includes(0)) return `not a ${kind} file: it holds binary data (NUL bytes in its first ${SNIFF_BYTES} bytes; UTF-16 text? save it as UTF-8)`;
  return undefined;
}
