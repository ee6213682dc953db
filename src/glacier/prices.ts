// The price table: AWS S3 list prices per region, in USD, first pricing tier (the first 50
// TB of storage a month, the first 10 TB of transfer out). Data, not logic: src/glacier/
// cost.ts computes with it. A TypeScript module rather than JSON so that it ships in dist/
// with the rest and needs no import attributes; edit the numbers here when AWS changes them.
//
// Sources (PRICE_TABLE.notes says how sure each region's numbers are):
//  - https://aws.amazon.com/s3/pricing/ (Storage, Requests & data retrievals, Data transfer),
//    us-east-1 list prices as of May 2026, as tabulated in "Glacier and Deep Archive Pricing:
//    The Complete 2026 Cost Guide" (usage.ai, updated 2026-06-05): STANDARD 0.023, STANDARD_IA
//    0.0125 (+0.01/GB), GLACIER_IR 0.004 (+0.03/GB), GLACIER 0.0036 (Bulk free, Standard 0.01,
//    Expedited 0.03 per GB), DEEP_ARCHIVE 0.00099 (Standard 0.02, Bulk 0.0025 per GB);
//  - restore request fees: AWS re:Post knowledge center, "manage data retrieval costs for S3
//    Glacier" (s3-manage-data-retrieval): 0.05 per 1,000 Standard, 10 per 1,000 Expedited;
//  - minimum durations and sizes: S3 User Guide, "Amazon S3 storage classes" (storage-class-
//    intro.html#sc-compare): STANDARD_IA 30 days and 128 KB, GLACIER_IR 90 days and 128 KB,
//    GLACIER 90 days, DEEP_ARCHIVE 180 days; archived objects carry 40 KB each, 32 KB billed
//    at the archive class and 8 KB at STANDARD;
//  - other regions: us-west-2 and eu-west-1 list the same prices as us-east-1 for these
//    classes (arqbackup.com, "AWS Glacier Pricing Explained", shows one Glacier price for
//    N. Virginia, Oregon and Ireland); eu-central-1 (Frankfurt) is dearer: its storage and
//    request prices from the S3 pricing page, Frankfurt tab (read 2025), its retrieval and
//    restore-request fees approximate (not re-verified; the page's ratios to us-east-1).
import type { RestoreTier, StorageClass } from '../backend/backend.js';

export interface RegionPrices {
  /** Storage, USD per GB-month (GB = 2^30 bytes). */
  storagePerGbMonth: Record<StorageClass, number>;
  /** PUT, COPY, POST, LIST requests, USD per 1000. */
  putPer1000: Record<StorageClass, number>;
  /** GET, HEAD (SELECT and the rest) requests, USD per 1000. */
  getPer1000: Record<StorageClass, number>;
  /** Per GB read back: for classes readable at once a flat fee, for archive classes by restore tier. */
  retrievalPerGb: Record<StorageClass, Partial<Record<RestoreTier, number>>>;
  /** RestoreObject requests of archive classes, USD per 1000, by tier. */
  restoreRequestPer1000: Partial<Record<StorageClass, Partial<Record<RestoreTier, number>>>>;
  /** Data transfer out to the internet, USD per GB (first 10 TB a month; the first 100 GB a month across AWS are free, not modelled). */
  transferOutPerGb: number;
}

export interface PriceTable {
  source: string;
  /** How sure each region's numbers are (see the sources above). */
  notes: Record<string, string>;
  /** When the prices were read (YYYY-MM). */
  read: string;
  currency: 'USD';
  /** Used for a region not in the table (with a warning), and for what-ifs of a local repository. */
  fallbackRegion: string;
  regions: Record<string, { name: string; prices: RegionPrices }>;
  /** Archived objects (GLACIER, DEEP_ARCHIVE): bytes billed per object at the archive class and at STANDARD. */
  archiveOverhead: { coldBytes: number; standardBytes: number };
  /** Smallest object size billed (a smaller object is billed as this size). */
  minObjectBytes: Partial<Record<StorageClass, number>>;
  /** Minimum storage duration billed, days (deleting earlier is billed as if kept). */
  minStorageDays: Record<StorageClass, number>;
}

const KB = 1024;

/** us-east-1's list prices; us-west-2 and eu-west-1 list the same for these classes. */
const US_EAST_1: RegionPrices = {
  storagePerGbMonth: { STANDARD: 0.023, STANDARD_IA: 0.0125, GLACIER_IR: 0.004, GLACIER: 0.0036, DEEP_ARCHIVE: 0.00099 },
  putPer1000: { STANDARD: 0.005, STANDARD_IA: 0.01, GLACIER_IR: 0.02, GLACIER: 0.03, DEEP_ARCHIVE: 0.05 },
  getPer1000: { STANDARD: 0.0004, STANDARD_IA: 0.001, GLACIER_IR: 0.01, GLACIER: 0.0004, DEEP_ARCHIVE: 0.0004 },
  retrievalPerGb: {
    STANDARD: { Expedited: 0, Standard: 0, Bulk: 0 },
    STANDARD_IA: { Expedited: 0.01, Standard: 0.01, Bulk: 0.01 },
    GLACIER_IR: { Expedited: 0.03, Standard: 0.03, Bulk: 0.03 },
    GLACIER: { Expedited: 0.03, Standard: 0.01, Bulk: 0 },
    DEEP_ARCHIVE: { Standard: 0.02, Bulk: 0.0025 },
  },
  restoreRequestPer1000: {
    GLACIER: { Expedited: 10.0, Standard: 0.05, Bulk: 0 },
    DEEP_ARCHIVE: { Standard: 0.1, Bulk: 0.025 },
  },
  transferOutPerGb: 0.09,
};

/** Frankfurt. */
const EU_CENTRAL_1: RegionPrices = {
  storagePerGbMonth: { STANDARD: 0.0245, STANDARD_IA: 0.0135, GLACIER_IR: 0.005, GLACIER: 0.0045, DEEP_ARCHIVE: 0.0018 },
  putPer1000: { STANDARD: 0.0054, STANDARD_IA: 0.01, GLACIER_IR: 0.02, GLACIER: 0.036, DEEP_ARCHIVE: 0.06 },
  getPer1000: { STANDARD: 0.00043, STANDARD_IA: 0.001, GLACIER_IR: 0.01, GLACIER: 0.00043, DEEP_ARCHIVE: 0.00043 },
  retrievalPerGb: {
    STANDARD: { Expedited: 0, Standard: 0, Bulk: 0 },
    STANDARD_IA: { Expedited: 0.01, Standard: 0.01, Bulk: 0.01 },
    GLACIER_IR: { Expedited: 0.03, Standard: 0.03, Bulk: 0.03 },
    GLACIER: { Expedited: 0.036, Standard: 0.012, Bulk: 0 },
    DEEP_ARCHIVE: { Standard: 0.022, Bulk: 0.0025 },
  },
  restoreRequestPer1000: {
    GLACIER: { Expedited: 12.0, Standard: 0.06, Bulk: 0 },
    DEEP_ARCHIVE: { Standard: 0.12, Bulk: 0.03 },
  },
  transferOutPerGb: 0.09,
};

export const PRICE_TABLE: PriceTable = {
  source: 'https://aws.amazon.com/s3/pricing/ (list prices, first tier) and the S3 User Guide, "Amazon S3 storage classes"',
  read: '2026-06',
  notes: {
    'us-east-1': 'list prices of May 2026',
    'us-west-2': 'same list prices as us-east-1',
    'eu-west-1': 'same list prices as us-east-1',
    'eu-central-1': 'storage and requests from the pricing page (2025); retrieval and restore requests approximate',
  },
  currency: 'USD',
  fallbackRegion: 'us-east-1',
  regions: {
    'us-east-1': { name: 'US East (N. Virginia)', prices: US_EAST_1 },
    'us-west-2': { name: 'US West (Oregon)', prices: US_EAST_1 },
    'eu-west-1': { name: 'Europe (Ireland)', prices: US_EAST_1 },
    'eu-central-1': { name: 'Europe (Frankfurt)', prices: EU_CENTRAL_1 },
  },
  archiveOverhead: { coldBytes: 32 * KB, standardBytes: 8 * KB },
  minObjectBytes: { STANDARD_IA: 128 * KB, GLACIER_IR: 128 * KB },
  minStorageDays: { STANDARD: 0, STANDARD_IA: 30, GLACIER_IR: 90, GLACIER: 90, DEEP_ARCHIVE: 180 },
};
