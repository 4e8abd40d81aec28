create table if not exists users (id serial primary key, name text not null unique);
insert into users (name) values ('ada'), ('grace') on conflict do nothing;
