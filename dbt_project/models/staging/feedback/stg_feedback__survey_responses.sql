with survey_responses as (
    {{ dedup(source('feedback', 'survey_responses'), ['response_id']) }}
)

select
    response_id,
    user_id,
    survey,
    score,
    product_line,
    {{ mask_pii('comment') }} as comment,
    submitted_at,
    {{ utc_date('submitted_at') }} as submitted_date
from survey_responses
