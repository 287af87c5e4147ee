//! The slixmpp scenario (see `palaver_e2e::scenario`) on the default SQLite store.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_clients_chat_page_mam_and_survive_restart_on_sqlite() {
    palaver_e2e::scenario::run(palaver_e2e::Store::Sqlite).await;
}
