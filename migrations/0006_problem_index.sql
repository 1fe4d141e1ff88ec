-- Problems are looked up per user at every login (only new ones are recorded).
CREATE INDEX idpsync_problems_user ON idpsync_problems (user_id, source);
