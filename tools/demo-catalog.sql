-- The demo catalog: 36 radio streams in a `streams` table shaped like the operators' own
-- (id, url, name, active, plus columns that travel to the worker as metadata).
-- Used by `npm run demo` (in a database of its own) and by docker-compose.yml (mounted into
-- the postgres container's /docker-entrypoint-initdb.d, so it runs once on a fresh volume).
-- The URLs are placeholders: the simulated workers never open them.
create table if not exists streams (
  id         serial primary key,
  url        text not null,
  name       text,
  active     boolean not null default true,
  cidade     text,
  estado     text,
  created_at timestamptz not null default now()
);

insert into streams (url, name, cidade, estado)
select 'http://radio.example.invalid/demo' || lpad(g::text, 2, '0'),
       'Rádio Demo ' || lpad(g::text, 2, '0') || ' - ' || c.cidade || ' ' || c.estado,
       c.cidade,
       c.estado
from generate_series(1, 36) as g
join (values (0, 'Curitiba', 'PR'), (1, 'São Paulo', 'SP'), (2, 'Recife', 'PE'),
             (3, 'Porto Alegre', 'RS'), (4, 'Belo Horizonte', 'MG'), (5, 'Salvador', 'BA'))
  as c(k, cidade, estado) on c.k = g % 6
where not exists (select 1 from streams);
