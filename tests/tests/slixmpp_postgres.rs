//! The slixmpp scenario (see `palaver_e2e::scenario`) on PostgreSQL (`PALAVER_TEST_PG` or
//! `DATABASE_URL`; the test fails when neither is set).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_clients_chat_page_mam_and_survive_restart_on_postgres() {
    palaver_e2e::scenario::run(palaver_e2e::Store::Postgres).await;
}
