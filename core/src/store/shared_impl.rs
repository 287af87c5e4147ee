//! What both backends share word for word: `impl_driver_helpers!` writes the `fetch_*`/`write`
//! helpers over a backend's pool and row type, and `impl_store!` writes the trait impl over
//! them. Each backend provides `query`, `bind_vals` and `append_batch` for its own driver.

use super::{StoreError, StoreResult};

/// `Err(NotFound)` when an update touched no row.
pub(super) fn found(affected: u64) -> StoreResult<()> {
    if affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Row-fetching and write helpers for a backend whose `pool` field is a sqlx pool with row
/// type `$row` (errors of writes mapped by `write_err`).
macro_rules! impl_driver_helpers {
    ($ty:ty, $row:ty) => {
        impl $ty {
            async fn fetch_opt<T>(
                &self,
                q: Q<'_>,
                map: impl Fn(&$row) -> StoreResult<T>,
            ) -> StoreResult<Option<T>> {
                q.fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(map)
                    .transpose()
            }

            async fn fetch_all<T>(
                &self,
                q: Q<'_>,
                map: impl Fn(&$row) -> StoreResult<T>,
            ) -> StoreResult<Vec<T>> {
                q.fetch_all(&self.pool).await?.iter().map(map).collect()
            }

            async fn fetch_i64(&self, q: Q<'_>) -> StoreResult<i64> {
                let row = q.fetch_one(&self.pool).await?;
                row.try_get::<i64, _>(0)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            }

            /// Runs a write; returns the number of affected rows, errors mapped by `write_err`.
            async fn write(&self, q: Q<'_>) -> StoreResult<u64> {
                Ok(q.execute(&self.pool)
                    .await
                    .map_err(write_err)?
                    .rows_affected())
            }
        }
    };
}

/// Implements `Store` for a backend type (see the module doc for what it must provide).
macro_rules! impl_store {
    ($ty:ty, $backend:literal) => {
        #[async_trait::async_trait]
        impl Store for $ty {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn append_messages(&self, batch: &[StoredMessage]) -> StoreResult<()> {
                self.append_batch(batch, &[]).await
            }

            async fn append_messages_recorded(
                &self,
                batch: &[StoredMessage],
                outbox: &[ComplianceEvent],
            ) -> StoreResult<()> {
                self.append_batch(batch, outbox).await
            }

            async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
                self.write(bind_vals(query(INSERT_USER), user_vals(user)))
                    .await?;
                Ok(())
            }

            async fn create_users(&self, users: &[UserRecord]) -> StoreResult<Vec<bool>> {
                let mut tx = self.pool.begin().await?;
                let mut added = Vec::with_capacity(users.len());
                for user in users {
                    let done = bind_vals(query(INSERT_USER_IF_ABSENT), user_vals(user))
                        .execute(&mut *tx)
                        .await
                        .map_err(write_err)?;
                    added.push(done.rows_affected() > 0);
                }
                tx.commit().await?;
                Ok(added)
            }

            async fn update_user(&self, user: &UserRecord) -> StoreResult<()> {
                let mut vals = user_vals(user);
                vals.truncate(USER_UPDATE_VALS);
                found(self.write(bind_vals(query(UPDATE_USER), vals)).await?)
            }

            async fn delete_user(&self, user: &UserId) -> StoreResult<bool> {
                Ok(self.write(query(DELETE_USER).bind(user.as_str())).await? > 0)
            }

            async fn get_user(&self, user: &UserId) -> StoreResult<Option<UserRecord>> {
                self.fetch_opt(query(GET_USER).bind(user.as_str()), user_from_row)
                    .await
            }

            async fn list_users(&self) -> StoreResult<Vec<UserId>> {
                self.fetch_all(query(LIST_USERS), user_id_from_row).await
            }

            async fn create_category(&self, category: &Category) -> StoreResult<()> {
                self.write(bind_vals(query(INSERT_CATEGORY), category_vals(category)?))
                    .await?;
                Ok(())
            }

            async fn update_category(&self, category: &Category) -> StoreResult<()> {
                let q = bind_vals(query(UPDATE_CATEGORY), category_vals(category)?);
                found(self.write(q).await?)
            }

            async fn delete_category(&self, id: uuid::Uuid) -> StoreResult<bool> {
                Ok(self
                    .write(query(DELETE_CATEGORY).bind(id.to_string()))
                    .await?
                    > 0)
            }

            async fn get_category_by_name(&self, name: &str) -> StoreResult<Option<Category>> {
                let q = query(GET_CATEGORY_BY_NAME).bind(name_key(name));
                self.fetch_opt(q, category_from_row).await
            }

            async fn get_category(&self, id: uuid::Uuid) -> StoreResult<Option<Category>> {
                let q = query(GET_CATEGORY).bind(id.to_string());
                self.fetch_opt(q, category_from_row).await
            }

            async fn list_categories(&self) -> StoreResult<Vec<Category>> {
                self.fetch_all(query(LIST_CATEGORIES), category_from_row)
                    .await
            }

            async fn create_room(&self, room: &RoomRecord) -> StoreResult<RoomId> {
                let q = bind_vals(query(INSERT_ROOM), room_vals(room)).bind(room.created_at);
                let row = q.fetch_one(&self.pool).await.map_err(write_err)?;
                row.try_get::<i64, _>(0)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            }

            async fn update_room(&self, room: &RoomRecord) -> StoreResult<()> {
                let q = bind_vals(query(UPDATE_ROOM), room_vals(room)).bind(room.id);
                found(self.write(q).await?)
            }

            async fn delete_room(&self, id: RoomId) -> StoreResult<bool> {
                Ok(self.write(query(DELETE_ROOM).bind(id)).await? > 0)
            }

            async fn get_room(&self, name: &str) -> StoreResult<Option<RoomRecord>> {
                let q = query(GET_ROOM).bind(name.to_lowercase());
                self.fetch_opt(q, room_from_row).await
            }

            async fn get_room_by_id(&self, id: RoomId) -> StoreResult<Option<RoomRecord>> {
                self.fetch_opt(query(GET_ROOM_BY_ID).bind(id), room_from_row)
                    .await
            }

            async fn list_rooms(&self) -> StoreResult<Vec<RoomRecord>> {
                self.fetch_all(query(LIST_ROOMS), room_from_row).await
            }

            async fn set_affiliation(
                &self,
                room: RoomId,
                user: &UserId,
                affiliation: Affiliation,
                reason: &str,
            ) -> StoreResult<()> {
                let q = if affiliation == Affiliation::None {
                    query(DELETE_AFFILIATION).bind(room).bind(user.as_str())
                } else {
                    query(UPSERT_AFFILIATION)
                        .bind(room)
                        .bind(user.as_str())
                        .bind(affiliation.as_str())
                        .bind(reason)
                };
                self.write(q).await?;
                Ok(())
            }

            async fn affiliations(&self, room: RoomId) -> StoreResult<Vec<AffiliationRecord>> {
                self.fetch_all(query(LIST_AFFILIATIONS).bind(room), |r| {
                    affiliation_from_row(r)
                })
                .await
            }

            async fn last_seq(&self, room: RoomId) -> StoreResult<i64> {
                self.fetch_i64(query(LAST_SEQ).bind(room)).await
            }

            async fn history(
                &self,
                room: RoomId,
                q: &HistoryQuery,
            ) -> StoreResult<Vec<StoredMessage>> {
                let Some((sql, vals)) = history_sql(room, q, HistoryRead::Rows) else {
                    return Ok(Vec::new());
                };
                let query = bind_vals(sqlx::query(AssertSqlSafe(sql)), vals);
                let rows = self.fetch_all(query, message_from_row).await?;
                Ok(finish_history(rows, q))
            }

            async fn message_by_stanza_id(
                &self,
                room: RoomId,
                stanza_id: &str,
            ) -> StoreResult<Option<StoredMessage>> {
                let q = query(MESSAGE_BY_STANZA_ID).bind(room).bind(stanza_id);
                self.fetch_opt(q, message_from_row).await
            }

            async fn count_messages(&self, room: RoomId, q: &HistoryQuery) -> StoreResult<u64> {
                if q.sender.is_none() {
                    let Some((sql, vals)) = history_sql(room, q, HistoryRead::Bounds) else {
                        return Ok(0);
                    };
                    let bounds = bind_vals(sqlx::query(AssertSqlSafe(sql)), vals)
                        .fetch_one(&self.pool)
                        .await?;
                    let low: Option<i64> = bounds
                        .try_get(0)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    let high: Option<i64> = bounds
                        .try_get(1)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    match (low, high) {
                        (Some(low), Some(high)) if high - low >= EXACT_COUNT_LIMIT => {
                            return Ok(u64::try_from(high - low + 1).unwrap_or(0));
                        }
                        (Some(_), Some(_)) => {}
                        _ => return Ok(0),
                    }
                }
                let Some((sql, vals)) = history_sql(room, q, HistoryRead::Count) else {
                    return Ok(0);
                };
                let n = self
                    .fetch_i64(bind_vals(sqlx::query(AssertSqlSafe(sql)), vals))
                    .await?;
                u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("count {n}")))
            }

            async fn upsert_registration(&self, registration: &Registration) -> StoreResult<()> {
                let q = bind_vals(query(UPSERT_REGISTRATION), registration_vals(registration));
                self.write(q).await?;
                Ok(())
            }

            async fn remove_registration(&self, user: &UserId, contact: &str) -> StoreResult<bool> {
                let q = query(DELETE_REGISTRATION).bind(user.as_str()).bind(contact);
                Ok(self.write(q).await? > 0)
            }

            async fn registrations(
                &self,
                user: &UserId,
                now: Millis,
            ) -> StoreResult<Vec<Registration>> {
                let q = query(LIST_REGISTRATIONS).bind(user.as_str()).bind(now);
                self.fetch_all(q, registration_from_row).await
            }

            async fn expire_registrations(&self, now: Millis) -> StoreResult<Vec<Registration>> {
                let q = query(EXPIRE_REGISTRATIONS).bind(now);
                let expired = self.fetch_all(q, registration_from_row).await?;
                Ok(sort_registrations(expired))
            }

            async fn insert_file(&self, file: &FileRecord) -> StoreResult<()> {
                self.write(bind_vals(query(INSERT_FILE), file_vals(file)?))
                    .await?;
                Ok(())
            }

            async fn get_file(&self, id: uuid::Uuid) -> StoreResult<Option<FileRecord>> {
                self.fetch_opt(query(GET_FILE).bind(id.to_string()), file_from_row)
                    .await
            }

            async fn set_file_room(&self, id: uuid::Uuid, room: RoomId) -> StoreResult<bool> {
                let q = query(SET_FILE_ROOM).bind(room).bind(id.to_string());
                Ok(self.write(q).await? > 0)
            }

            async fn room_files(&self, room: RoomId, limit: u32) -> StoreResult<Vec<FileRecord>> {
                let q = query(ROOM_FILES).bind(room).bind(i64::from(limit));
                self.fetch_all(q, file_from_row).await
            }

            async fn delete_file(&self, id: uuid::Uuid) -> StoreResult<Option<FileRecord>> {
                self.fetch_opt(query(DELETE_FILE).bind(id.to_string()), file_from_row)
                    .await
            }

            async fn blob_refs(&self, sha256: &str) -> StoreResult<u64> {
                let n = self.fetch_i64(query(COUNT_BLOB_REFS).bind(sha256)).await?;
                u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("count {n}")))
            }

            async fn uploader_bytes(&self, user: &UserId) -> StoreResult<u64> {
                let n = self
                    .fetch_i64(query(UPLOADER_BYTES).bind(user.as_str()))
                    .await?;
                u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("sum {n}")))
            }

            async fn shared_secret(&self, name: &str, fresh: &[u8]) -> StoreResult<Vec<u8>> {
                self.write(query(INSERT_SECRET).bind(name).bind(fresh))
                    .await?;
                self.fetch_opt(query(GET_SECRET).bind(name), |r| r.bytes("value"))
                    .await?
                    .ok_or_else(|| StoreError::Corrupt(format!("secret {name} vanished")))
            }

            async fn outbox_push(&self, events: &[ComplianceEvent]) -> StoreResult<()> {
                if events.is_empty() {
                    return Ok(());
                }
                let mut tx = self.pool.begin().await?;
                for event in events {
                    bind_vals(query(OUTBOX_PUSH), outbox_vals(event))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn outbox_peek(&self, limit: u32) -> StoreResult<Vec<(i64, ComplianceEvent)>> {
                let q = query(OUTBOX_PEEK).bind(i64::from(limit));
                self.fetch_all(q, outbox_from_row).await
            }

            async fn outbox_delete(&self, ids: &[i64]) -> StoreResult<u64> {
                let mut gone = 0;
                for chunk in ids.chunks(OUTBOX_DELETE_CHUNK) {
                    let sql = outbox_delete_sql(chunk.len());
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    gone += q
                        .execute(&self.pool)
                        .await
                        .map_err(write_err)?
                        .rows_affected();
                }
                Ok(gone)
            }
        }
    };
}
