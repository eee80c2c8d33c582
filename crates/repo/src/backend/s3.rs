//! A repository in an S3-compatible bucket (AWS, Hetzner/DigitalOcean/
//! Vultr/Linode object storage, MinIO, SeaweedFS), through `object_store`.
//!
//! Every object is written with `If-None-Match: *` and a SHA-256 checksum
//! the server verifies, so an upload never replaces an object and a
//! damaged one is refused instead of stored. Repository files are named by
//! their content's hash: an object that already exists holds the same
//! bytes, and finding one is success.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use kastell_core::{Error, ErrorKind};
use object_store::aws::{AmazonS3Builder, Checksum};
use object_store::path::Path;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};
use rustic_core::{BytesList, FileType, Id, ReadBackend, RusticResult, WriteBackend};
use tokio::runtime::Handle;

use super::object_path;
use crate::append_only::{Attempt, CANARY_CONTENT, CANARY_NAME, CanaryReport};
use crate::error::to_rustic;

/// An access key for S3 storage. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct S3Credentials {
    /// The access key id (`AWS_ACCESS_KEY_ID`).
    pub access_key_id: String,
    /// The secret (`AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: String,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// A bucket and key prefix. Blocking calls run on the tokio runtime it was
/// built in; call them from a blocking thread, never from async code.
pub struct S3Backend {
    store: Arc<dyn ObjectStore>,
    runtime: Handle,
    location: String,
    prefix: String,
}

impl fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Backend")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// How long one S3 request may take before it is retried or fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl S3Backend {
    /// A backend for `bucket` under `prefix` at `endpoint` (path-style
    /// requests, region `us-east-1` unless `AWS_REGION` says otherwise).
    /// Refuses without credentials or outside a tokio runtime.
    pub fn new(
        endpoint: &str,
        bucket: &str,
        prefix: &str,
        credentials: Option<&S3Credentials>,
    ) -> kastell_core::Result<Self> {
        let credentials = credentials.ok_or_else(|| {
            Error::new(
                ErrorKind::Unauthenticated,
                "No S3 credentials for the repository",
            )
            .with_hint("Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (as for restic)")
        })?;
        let runtime = Handle::try_current()
            .map_err(|_| Error::unexpected("the S3 backend was built outside a tokio runtime"))?;
        // reqwest's TLS needs a process-wide crypto provider; another
        // part of kastell may have installed it already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
        let store = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_bucket_name(bucket)
            .with_region(region)
            .with_access_key_id(&credentials.access_key_id)
            .with_secret_access_key(&credentials.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_checksum_algorithm(Checksum::SHA256)
            .with_client_options(
                // Set here, not on the builder: these options replace the
                // builder's own, plain HTTP permission included.
                ClientOptions::new()
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_timeout(REQUEST_TIMEOUT)
                    .with_connect_timeout(Duration::from_secs(10)),
            )
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            })
            .build()
            .map_err(|e| store_error("configuring the S3 repository", e))?;
        let location = if prefix.is_empty() {
            format!("s3:{endpoint}/{bucket}")
        } else {
            format!("s3:{endpoint}/{bucket}/{prefix}")
        };
        Ok(Self {
            store: Arc::new(store),
            runtime,
            location,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, relative: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(relative)
        } else {
            Path::from(format!("{}/{relative}", self.prefix))
        }
    }

    fn file_key(&self, tpe: FileType, id: &Id) -> Path {
        self.key(&object_path(tpe, id))
    }

    /// Writes the canary unless it is there (`If-None-Match: *`), then
    /// tries to overwrite it and to delete it. A refusal is the server's
    /// 403; any other failure (unreachable, a wrong key, no bucket) is
    /// returned and proves nothing.
    pub(crate) fn probe_canary(&self) -> kastell_core::Result<CanaryReport> {
        let key = self.key(CANARY_NAME);
        let doing = |what: &str| format!("{what} the canary {key} in {}", self.location);
        let payload = || PutPayload::from_static(CANARY_CONTENT);
        let create = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .runtime
            .block_on(self.store.put_opts(&key, payload(), create))
        {
            Ok(_)
            | Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {}
            Err(e) => return Err(store_error(&doing("writing"), e)),
        }
        let attempt = |result: object_store::Result<()>, what: &str| match result {
            Ok(()) => Ok(Attempt::Allowed),
            Err(object_store::Error::PermissionDenied { .. }) => Ok(Attempt::Refused),
            Err(e) => Err(store_error(&doing(what), e)),
        };
        // A versioned bucket answers an overwrite with the new version's
        // id and keeps the earlier one.
        let overwrite = match self.runtime.block_on(self.store.put(&key, payload())) {
            Ok(put)
                if put
                    .version
                    .as_deref()
                    .is_some_and(|v| !v.is_empty() && v != "null") =>
            {
                Attempt::Kept
            }
            other => attempt(other.map(drop), "overwriting")?,
        };
        let delete = attempt(self.runtime.block_on(self.store.delete(&key)), "deleting")?;
        Ok(CanaryReport {
            location: self.location.clone(),
            canary: key.to_string(),
            overwrite,
            delete,
        })
    }

    fn block_on<T>(
        &self,
        doing: impl fmt::Display,
        request: impl Future<Output = object_store::Result<T>>,
    ) -> RusticResult<T> {
        self.runtime
            .block_on(request)
            .map_err(|e| to_rustic(store_error(&format!("{doing} in {}", self.location), e)))
    }
}

/// A kastell error for an `object_store` failure, with what was being done.
fn store_error(doing: &str, error: object_store::Error) -> Error {
    use object_store::Error as E;
    let (kind, retryable, hint) = match &error {
        E::NotFound { .. } => (ErrorKind::NotFound, false, None),
        _ if error.to_string().contains("NoSuchBucket") => (
            ErrorKind::NotFound,
            false,
            Some("The bucket does not exist: create it with your storage provider first"),
        ),
        E::Unauthenticated { .. } => (
            ErrorKind::Unauthenticated,
            false,
            Some("Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        ),
        E::PermissionDenied { .. } => (
            ErrorKind::PermissionDenied,
            false,
            Some("The access key may not write to this bucket, or the bucket is full (quota)"),
        ),
        E::AlreadyExists { .. } | E::Precondition { .. } => (ErrorKind::AlreadyExists, false, None),
        _ => (
            ErrorKind::Unavailable,
            true,
            Some("Check that the S3 endpoint is reachable and the bucket exists, then try again"),
        ),
    };
    let mut message = format!("{doing}: {error}");
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = inner.source();
    }
    let error = Error::new(kind, message).set_retryable(retryable);
    match hint {
        Some(hint) => error.with_hint(hint),
        None => error,
    }
}

impl ReadBackend for S3Backend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            // A listing of `config` would list the "directory" `config/`;
            // the config is one object, so ask for it.
            let key = self.key("config");
            let head = self.runtime.block_on(self.store.head(&key));
            return match head {
                Ok(meta) => Ok(vec![(
                    Id::default(),
                    u32::try_from(meta.size).unwrap_or(u32::MAX),
                )]),
                Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
                Err(e) => Err(to_rustic(store_error(
                    &format!("reading {key} in {}", self.location),
                    e,
                ))),
            };
        }
        let dir = tpe.dirname();
        let prefix = self.key(dir);
        let objects = self.block_on(format!("listing {dir}"), async {
            self.store.list(Some(&prefix)).try_collect::<Vec<_>>().await
        })?;
        Ok(objects
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?;
                let size = u32::try_from(meta.size).unwrap_or(u32::MAX);
                name.parse::<Id>().ok().map(|id| (id, size))
            })
            .collect())
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let key = self.file_key(tpe, id);
        self.block_on(format!("reading {key}"), async {
            self.store.get(&key).await?.bytes().await
        })
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let key = self.file_key(tpe, id);
        let range: Range<u64> = u64::from(offset)..u64::from(offset) + u64::from(length);
        self.block_on(format!("reading {key}"), self.store.get_range(&key, range))
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.file_key(tpe, id).to_string()
    }
}

impl WriteBackend for S3Backend {
    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let key = self.file_key(tpe, id);
        let payload: PutPayload = content.into_vec().into_iter().collect();
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let put = self
            .runtime
            .block_on(self.store.put_opts(&key, payload, options));
        match put {
            Ok(_) => Ok(()),
            // Same name, same content: restic names files by their hash.
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) if tpe != FileType::Config => Ok(()),
            Err(e) => Err(to_rustic(store_error(
                &format!("writing {key} in {}", self.location),
                e,
            ))),
        }
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let key = self.file_key(tpe, id);
        self.block_on(format!("removing {key}"), self.store.delete(&key))
    }
}
