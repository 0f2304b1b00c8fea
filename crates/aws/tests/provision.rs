//! The template's resources come up on moto with the names the adapters expect.

mod common;

#[tokio::test]
async fn provisions_every_resource_of_the_template() {
    let (clients, names) = common::deployment().await;
    let tables = clients.dynamodb.list_tables().send().await.unwrap();
    for t in [&names.messages_table, &names.schedules_table, &names.results_table, &names.ledger_table] {
        assert!(tables.table_names().contains(t), "{t} not created");
    }
    let messages = clients.dynamodb.describe_table().table_name(&names.messages_table).send().await.unwrap();
    let gsis: Vec<_> = messages
        .table()
        .unwrap()
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name().map(str::to_owned))
        .collect();
    assert!(gsis.contains(&"by-status".to_owned()), "{gsis:?}");
    assert_eq!(names.queues.len(), 4);
    assert_eq!(names.topics.len(), 4);
    let group = clients.scheduler.get_schedule_group().name(&names.schedule_group).send().await.unwrap();
    assert_eq!(group.name(), Some(names.schedule_group.as_str()));
}
