#!/usr/bin/env node
// Starts @20minutes/s3rver (pinned in package-lock.json), the S3-compatible
// test server that checks SigV4 header and presigned signatures. Its npm
// tarball declares bin/s3rver.js but ships without bin/ ("files" lists only
// lib/), so there is no node_modules/.bin/s3rver; this runs the package's
// own command line (lib/cli.js) with the same arguments:
//
//   node --openssl-legacy-provider scripts/s3rver.js -d /tmp/s3 \
//     -a 127.0.0.1 -p 0 --silent --no-vhost-buckets --configure-bucket phonon
//
// --openssl-legacy-provider: s3rver encrypts ListObjectsV2 continuation
// tokens with DES, which OpenSSL 3 (Node 17 and later) offers only in its
// legacy provider; without the flag a listing that needs a second page
// answers 500 InternalError ("Unsupported").
//
// The only key pair it accepts is access key S3RVER, secret S3RVER.
'use strict';

require('@20minutes/s3rver/lib/cli')
  .parseAsync(process.argv)
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
