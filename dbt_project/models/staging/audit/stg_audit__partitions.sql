select
    source,
    entity,
    partition_date as dt,
    load_id,
    loaded_at
from {{ source('audit', 'partitions') }}
