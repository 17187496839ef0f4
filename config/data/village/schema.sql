-- The village of Kestrel Ford, year 1203. Money is in silver coins.
CREATE TABLE farmers (
    farmer_id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    hamlet VARCHAR NOT NULL,        -- Millbrook, Ashgrove, Stonebridge or Fernhollow
    crop VARCHAR NOT NULL,
    acres INTEGER NOT NULL,
    harvest_bushels INTEGER NOT NULL -- the 1203 harvest
);
CREATE TABLE herders (
    herder_id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    hamlet VARCHAR NOT NULL,
    animal VARCHAR NOT NULL,        -- sheep, goats, cattle or pigs
    head INTEGER NOT NULL           -- number of animals in the herd
);
CREATE TABLE bandits (
    bandit_id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    gang VARCHAR NOT NULL,
    bounty_coins INTEGER NOT NULL,  -- the king's reward for capture
    captured BOOLEAN NOT NULL
);
CREATE TABLE raids (
    raid_id INTEGER PRIMARY KEY,
    gang VARCHAR NOT NULL,
    hamlet VARCHAR NOT NULL,        -- the hamlet raided
    raid_date DATE NOT NULL,
    loot_coins INTEGER NOT NULL,
    animals_taken INTEGER NOT NULL
);
CREATE TABLE taxes (
    tax_id INTEGER PRIMARY KEY,
    payer_kind VARCHAR NOT NULL,    -- 'farmer' (payer_id = farmers.farmer_id) or 'herder'
    payer_id INTEGER NOT NULL,
    season VARCHAR NOT NULL,        -- spring, summer, autumn, winter
    year INTEGER NOT NULL,
    amount_coins INTEGER NOT NULL,  -- the king's tax assessed
    paid BOOLEAN NOT NULL
);
CREATE TABLE merchants (
    merchant_id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    home_town VARCHAR NOT NULL,
    goods VARCHAR NOT NULL
);
CREATE TABLE trades (
    trade_id INTEGER PRIMARY KEY,
    merchant_id INTEGER NOT NULL,   -- merchants.merchant_id
    trade_date DATE NOT NULL,
    item VARCHAR NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price_coins INTEGER NOT NULL,
    direction VARCHAR NOT NULL      -- 'bought' or 'sold' by the merchant in the village market
);
